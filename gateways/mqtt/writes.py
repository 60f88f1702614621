"""Writable device settings: how a value the API was given becomes one MQTT message to a device.

Each family declares its settings next to its profile (gateways/mqtt/families.py) as a
:class:`Writable`: which of its devices take them (their kinds, and a pattern over the topic the
device publishes on, whose named parts fill the command topic) and a table of :class:`Setting`: the
command topic, how a value is checked (choices, ranges) and encoded (plain text, a JSON value,
``ON``/``OFF``), its unit, and the normalised field on which the device shows the new value back
(its echo), if it does. The checks describe themselves (``describe()``: JSON-able data), so that
the API can list a device's settings (``GET /api/devices/{id}/settings``) from this table alone.

Nothing from the network reaches a topic: the device must be one the gateway knows (its topic came
from the broker), the key must be in its family's table, and the value is checked and encoded by
the table. Pure logic: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeGuard

import msgspec

from schemas.telemetry import Kind

MAX_TOPIC_BYTES: Final = 65_535  # MQTT 3.1.1


class BadSetting(ValueError):
    """A value the setting does not take; the message says why, in words for the API's answer."""


class Check(Protocol):
    """Takes a value the API was given: returns it as the device takes it, or raises BadSetting."""

    def __call__(self, value: Any, /) -> Any: ...

    def describe(self) -> dict[str, Any]:
        """What the check takes, as JSON-able data with a ``type`` (for the API's listing)."""
        ...


Encode = Callable[[Any], bytes]
Shows = Callable[[Any, Any], bool]  # (the value written, the normalised value echoed) -> it shows the write


def same(written: Any, echoed: Any) -> bool:
    """The echo is the value written (numbers compared as numbers: ``16`` and ``16.0`` are one)."""
    if is_number(written) and is_number(echoed):
        return math.isclose(written, echoed, rel_tol=1e-9, abs_tol=1e-6)
    return bool(written == echoed)


@dataclass(frozen=True, slots=True)
class Scaled:
    """The echo is the value written times ``factor`` (evcc's limitEnergy in kWh, normalised to Wh)."""

    factor: float

    def __call__(self, written: Any, echoed: Any) -> bool:
        return same(written * self.factor, echoed)


@dataclass(frozen=True, slots=True)
class Near:
    """The echo is within ``tolerance`` of the value written (a device that rounds to 0.1 A)."""

    tolerance: float

    def __call__(self, written: Any, echoed: Any) -> bool:
        return is_number(echoed) and abs(written - echoed) <= self.tolerance


def scaled(factor: float) -> Scaled:
    return Scaled(factor)


def near(tolerance: float) -> Near:
    return Near(tolerance)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- checks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """One of ``options``; numbers must be given as numbers (``1``, not ``"1"``)."""

    options: tuple[str | int, ...]

    def __call__(self, value: Any, /) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        options = self.options
        if isinstance(value, bool) or value not in options or type(value) is not type(options[0]):
            raise BadSetting(f"expected one of {', '.join(map(str, options))}, got {_short(value)}")
        return value

    def describe(self) -> dict[str, Any]:
        return {"type": "choice", "options": list(self.options)}


def choice(*options: str | int) -> Choice:
    return Choice(options)


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number from ``low`` to ``high`` (whole with ``integer``)."""

    low: float
    high: float
    integer: bool = False

    def __call__(self, value: Any, /) -> Any:
        if not is_number(value) or not math.isfinite(value):
            raise BadSetting(f"expected a number, got {_short(value)}")
        if self.integer and not float(value).is_integer():
            raise BadSetting(f"expected a whole number, got {_short(value)}")
        if not self.low <= value <= self.high:
            raise BadSetting(f"expected {self.low:g} to {self.high:g}, got {value:g}")
        return int(value) if self.integer else value

    def describe(self) -> dict[str, Any]:
        return {"type": "number", "min": self.low, "max": self.high, "integer": self.integer}


def number(low: float, high: float, *, integer: bool = False) -> Number:
    return Number(low, high, integer)


@dataclass(frozen=True, slots=True)
class Flag:
    """``true`` or ``false`` (JSON booleans only)."""

    def __call__(self, value: Any, /) -> bool:
        if not isinstance(value, bool):
            raise BadSetting(f"expected true or false, got {_short(value)}")
        return value

    def describe(self) -> dict[str, Any]:
        return {"type": "flag"}


flag: Final = Flag()


@dataclass(frozen=True, slots=True)
class Properties:
    """One of ``words`` (``"clear"``), or an object of some of ``fields``; a field's value may be
    ``"clear"`` to remove it (OpenEVSE's claim and override properties). ``units``: a field's unit,
    for the description only."""

    fields: Mapping[str, Check] = field(hash=False)
    words: frozenset[str]
    units: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __call__(self, value: Any, /) -> Any:
        fields, words = self.fields, self.words
        if isinstance(value, str):
            if value not in words:
                raise BadSetting(f"expected an object or one of {', '.join(sorted(words))}, got {_short(value)}")
            return value
        if not isinstance(value, dict) or not value:
            raise BadSetting(f"expected an object of {', '.join(fields)}, or one of {', '.join(sorted(words))}")
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise BadSetting(f"unknown member(s) {', '.join(unknown)}; known: {', '.join(fields)}")
        checked = {}
        for name, member in value.items():
            try:
                checked[name] = "clear" if member == "clear" else fields[name](member)
            except BadSetting as exc:
                raise BadSetting(f"{name}: {exc}") from None
        return checked

    def describe(self) -> dict[str, Any]:
        described = {
            name: {**check.describe(), **({"unit": self.units[name]} if name in self.units else {})}
            for name, check in self.fields.items()
        }
        return {"type": "object", "fields": described, "words": sorted(self.words)}


def properties(
    fields: Mapping[str, Check], words: frozenset[str], units: Mapping[str, str] | None = None
) -> Properties:
    return Properties(fields, words, units or {})


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode() if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


# --- encoders ---------------------------------------------------------------------------------


def text(value: Any) -> bytes:
    """Plain text as evcc reads it: ``16``, ``6.5``, ``now``, ``true``."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, float):
        return (f"{value:.6f}".rstrip("0").rstrip(".") or "0").encode()
    return str(value).encode()


def json_value(value: Any) -> bytes:
    """One JSON value (go-e: ``16``)."""
    return msgspec.json.encode(value)


def on_off(value: Any) -> bytes:
    """``ON``/``OFF``, as the esp32-evse Lua bridge announces its switch to Home Assistant."""
    return b"ON" if value else b"OFF"


def json_or_word(value: Any) -> bytes:
    """An object as JSON, a command word (``clear``, ``release``) as it is (OpenEVSE)."""
    return value.encode() if isinstance(value, str) else msgspec.json.encode(value)


def includes(written: Any, echoed: Any) -> bool:
    """OpenEVSE republishes its claim/override document after each command (its acknowledgement):
    ``clear``/``release`` are shown by no document (``{"state":"null"}`` is normalised to none), an
    object by a document holding each member (``"clear"`` ones gone)."""
    if isinstance(written, str):
        return echoed is None
    if not isinstance(echoed, dict):
        return False
    return all(
        name not in echoed if member == "clear" else same(member, echoed.get(name)) for name, member in written.items()
    )


# --- the tables -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One writable setting. ``topic`` is a template over the named parts of the family's device
    pattern and ``{device}``; ``echo`` a normalised field of the reading (``mode``,
    ``offered_current_a``, ``extra.requestedCurrentA``) on which the device publishes the value
    back, None when it does not; ``unit`` the unit of the value written (A, %, kWh), None for none."""

    topic: str
    check: Check
    encode: Encode
    echo: str | None = None
    shows: Shows = same
    retain: bool = False
    unit: str | None = None

    @property
    def scale(self) -> float | None:
        """The echoed value is the value written times this (:class:`Scaled`), or None: the same."""
        return self.shows.factor if isinstance(self.shows, Scaled) else None


@dataclass(frozen=True, slots=True)
class Writable:
    """A family's writable settings. ``topic`` must match (from its start) the topic the device last
    published on, and its named groups fill the settings' topics; None: every device of ``source``.
    ``kinds``: the kinds of device that take them (what the API lists; the gateway checks the
    topic). ``hint`` says why an echo may not come; ``timeout_s`` how long a client had better wait
    for it, when the default (``EVBUS_MQTT_SETTING_TIMEOUT``) may be too short."""

    source: str
    topic: re.Pattern[str] | None
    settings: Mapping[str, Setting]
    hint: str = ""
    kinds: tuple[Kind, ...] = ("evse",)
    timeout_s: float | None = None

    def parts(self, device_topic: str | None) -> dict[str, str] | None:
        if self.topic is None:
            return {}
        found = self.topic.match(device_topic) if device_topic is not None else None
        return None if found is None else found.groupdict()


@dataclass(frozen=True, slots=True)
class Write:
    """One planned write: publish ``payload`` on ``topic`` (QoS 1), then wait for ``echo``."""

    key: str
    topic: str
    payload: bytes
    value: Any
    retain: bool = False
    echo: str | None = None
    shows: Shows = same
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    outcome: Literal["unknown_key", "invalid"]
    reason: str
    valid_keys: tuple[str, ...] = ()


def of_kind(writables: tuple[Writable, ...], kind: str | None) -> Writable | None:
    """The first of a source's writables that devices of ``kind`` take, or None."""
    return next((w for w in writables if kind in w.kinds), None)


def valid_keys(writables: tuple[Writable, ...]) -> tuple[str, ...]:
    return tuple(sorted({key for w in writables for key in w.settings}))


def precheck(writables: tuple[Writable, ...], key: str, value: Any) -> Refused | None:
    """What the family's table says of ``key`` and ``value`` before any device is asked (the API's
    early 404/422); the gateway checks again against the device itself (:func:`plan`)."""
    setting = next((w.settings[key] for w in writables if key in w.settings), None)
    if setting is None:
        return Refused("unknown_key", f"{key!r} is not a writable setting", valid_keys(writables))
    try:
        setting.check(value)
    except BadSetting as exc:
        return Refused("invalid", f"{key}: {exc}")
    return None


def plan(
    writables: tuple[Writable, ...], device: str, device_topic: str | None, key: str, value: Any
) -> Write | Refused:
    """The message that writes ``key`` = ``value`` to ``device`` (last seen on ``device_topic``)."""
    found = next(((w, parts) for w in writables if (parts := w.parts(device_topic)) is not None), None)
    if found is None:
        return Refused("unknown_key", f"device {device!r} takes no settings")
    writable, parts = found
    setting = writable.settings.get(key)
    if setting is None:
        return Refused("unknown_key", f"{key!r} is not a setting of device {device!r}", valid_keys((writable,)))
    try:
        checked = setting.check(value)
    except BadSetting as exc:
        return Refused("invalid", f"{key}: {exc}")
    topic = setting.topic.format(device=device, **parts)
    if any(c in topic for c in "+#\0") or len(topic.encode()) > MAX_TOPIC_BYTES:
        return Refused("invalid", f"the device's command topic {topic[:80]!r} is not a valid MQTT topic")
    return Write(
        key, topic, setting.encode(checked), checked, setting.retain, setting.echo, setting.shows, writable.hint
    )
