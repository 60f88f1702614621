"""Per-device normalised state, folded from :class:`~gateways.mqtt.profiles.Update`\\ s.

evcc, go-e, OpenEVSE and openWB publish one value per topic, so a device's state is assembled
here and every change is published as a full snapshot (:class:`schemas.telemetry.Reading`) with
the names of the fields that changed. Presence: a presence topic (LWT, announce, ``status``) sets
``online``; any other *live* message from the device sets it true; a retained replay does not (a
dead evcc's retained values are replayed by the broker all the same); silence longer than the
threshold sets it false (:meth:`Devices.silent`). Pure logic over clocks the caller passes in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from gateways.mqtt.profiles import Update
from schemas.telemetry import PHASE_FIELDS, Kind, Reading, camel

MAX_DEVICES: Final = 100_000  # a broker full of topics that look like devices cannot exhaust memory


class RecentSet:
    """A set that keeps the ``limit`` members added (or added again) most recently: what a
    family remembers of the topics it saw (OpenEVSE bases, esp32-evse ids) stays bounded however
    many device-like topics a broker carries."""

    __slots__ = ("_members", "limit")

    def __init__(self, limit: int = MAX_DEVICES) -> None:
        self._members: OrderedDict[str, None] = OrderedDict()
        self.limit = limit

    def add(self, member: str) -> None:
        self._members[member] = None
        self._members.move_to_end(member)
        if len(self._members) > self.limit:
            self._members.popitem(last=False)

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __len__(self) -> int:
        return len(self._members)


@dataclass(slots=True)
class DeviceState:
    source: str
    device: str
    kind: Kind
    group: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    last_seen: float | None = None  # monotonic seconds of the last live message
    last_seen_at: str | None = None  # its RFC 3339 time
    topic: str | None = None  # the topic of its last own message: where its settings are written (writes.py)

    def apply(self, update: Update, *, live: bool) -> list[str]:
        """Fold one update in; the (camelCase) names of the fields it changed, in a stable order."""
        changed: list[str] = []
        for name, value in update.values.items():
            if name.startswith("extra."):
                key = name[len("extra.") :]
                if self.extra.get(key) != value:
                    if value is None:
                        self.extra.pop(key, None)
                    else:
                        self.extra[key] = value
                    changed.append(key)
                continue
            base, _, phase = name.partition(".")
            if phase:
                phases = list(self.values.get(base) or [None, None, None])
                phases[int(phase)] = value
                value = None if all(p is None for p in phases) else phases
            elif base in PHASE_FIELDS and isinstance(value, list):
                value = [*value, None, None, None][:3]
            if self.values.get(base) != value:
                if value is None:
                    self.values.pop(base, None)
                else:
                    self.values[base] = value
                changed.append(camel(base))
        if update.online is not None:
            changed.extend(self.set_online(update.online))
        elif live:
            changed.extend(self.set_online(True))
        return sorted(set(changed), key=changed.index)

    def value(self, name: str) -> Any:
        """A normalised field as an :class:`Update` names it (``mode``, ``extra.requestedCurrentA``)."""
        if name.startswith("extra."):
            return self.extra.get(name[len("extra.") :])
        return self.values.get(name)

    def set_online(self, online: bool) -> list[str]:
        if self.values.get("online") == online:
            return []
        self.values["online"] = online
        return ["online"]

    def seen(self, now: float, at: str) -> None:
        self.last_seen, self.last_seen_at = now, at

    def reading(self, ts: str, changed: list[str], **envelope: Any) -> Reading:
        return Reading(
            source=self.source,
            device=self.device,
            kind=self.kind,
            ts=ts,
            last_seen_at=self.last_seen_at,
            changed=changed,
            extra=dict(self.extra) or None,
            **self.values,
            **envelope,
        )


class Devices:
    """Every device the gateway has seen, by (source, device)."""

    def __init__(self, max_devices: int = MAX_DEVICES) -> None:
        self._devices: dict[tuple[str, str], DeviceState] = {}
        self.max_devices = max_devices

    def __len__(self) -> int:
        return len(self._devices)

    def get(self, source: str, device: str) -> DeviceState | None:
        return self._devices.get((source, device))

    def targets(self, update: Update) -> list[DeviceState]:
        """The devices an update applies to: its own, and with ``fan_out`` every known device of
        its source and group (evcc's ``status`` is every loadpoint's presence). Empty when the
        table is full and the device is new."""
        key = (update.source, update.device)
        own = self._devices.get(key)
        if own is None and len(self._devices) < self.max_devices:
            own = self._devices[key] = DeviceState(update.source, update.device, update.kind, update.group)
        found = [own] if own is not None else []
        if update.fan_out:
            found.extend(
                state
                for state in self._devices.values()
                if state.source == update.source and state.group == update.group and state is not own
            )
        return found

    def silent(self, now: float, threshold: float) -> list[DeviceState]:
        """Devices online (or of unknown presence) whose last live message is older than
        ``threshold``: they are marked offline here, and the caller publishes their readings."""
        gone = []
        for state in self._devices.values():
            if state.last_seen is None or now - state.last_seen < threshold:
                continue
            if state.values.get("online") is not False:
                state.values["online"] = False
                gone.append(state)
        return gone
