"""Bodies of ``telemetry.{source}.{device}`` readings and ``events.mqtt.*`` events. camelCase on the wire.

A :class:`Reading` is a **full snapshot** of one device's normalised state after one message
changed it (DESIGN §6): a consumer keeps the latest reading per device and has everything, and
``changed`` says which fields that message set or erased. A field that is absent is unknown or was
erased by the device (evcc's empty payloads); it is never written as 0. Units are fixed: W, Wh, A,
V, %, °C. The names are the ones the API's ``device`` shape uses (DESIGN §7: ``powerW``,
``energyWh``, ``sessionEnergyWh``, ``currentsA``, ``voltagesV``, ``socPct``, ``state``, …).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

Kind = Literal["evse", "meter", "site"]

# The normalised fields a mapping may set, with what each holds. Reading has exactly these (plus
# the envelope below); docs/adr/0010-mqtt-gateway.md lists them for consumers.
FIELDS: Final[dict[str, str]] = {
    "state": "IEC 61851 state A-F, where the device reports one (A no vehicle, B connected, C charging, "
    "D charging with ventilation, E error, F not available)",
    "state_raw": "the device's own status value as text (go-e `car`, OpenEVSE `state`, esp32-evse `C2`)",
    "connected": "a vehicle is plugged in",
    "charging": "energy is flowing to the vehicle (or the device says it charges)",
    "enabled": "the charger may charge (evcc `enabled`, go-e `alw`, esp32-evse `enabled`, a relay that is on)",
    "online": "presence: from LWT/announce/status topics, live messages, and silence",
    "power_w": "active power, W",
    "energy_wh": "the total energy counter, Wh",
    "session_energy_wh": "energy of the current or last session, Wh",
    "currents_a": "per-phase currents L1-L3, A (null for a phase not reported)",
    "voltages_v": "per-phase voltages L1-L3, V (null for a phase not reported)",
    "soc_pct": "vehicle state of charge, %",
    "offered_current_a": "current the charger offers or is set to, A",
    "phases": "phases in use",
    "temperature_c": "device temperature, °C",
    "errors": "the device's error names (empty: none)",
    "mode": "the charge mode (evcc `off|now|minpv|pv`)",
    "title": "the device's own name",
}

PHASE_FIELDS: Final = frozenset({"currents_a", "voltages_v"})


class Reading(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``telemetry.{source}.{device}``: one device's full normalised state."""

    source: str
    device: str
    kind: Kind  # no defaults for kind and changed: omit_defaults would leave them out, and they are always sent
    ts: str  # gateway clock (RFC 3339 UTC) of the message that produced this snapshot
    changed: list[str]  # camelCase names set or erased
    last_seen_at: str | None = None  # of the device's last live message
    retained: bool = False  # the message was a broker replay of a retained value: it may be old
    state: str | None = None
    state_raw: str | None = None
    connected: bool | None = None
    charging: bool | None = None
    enabled: bool | None = None
    online: bool | None = None
    power_w: float | None = None
    energy_wh: float | None = None
    session_energy_wh: float | None = None
    currents_a: list[float | None] | None = None
    voltages_v: list[float | None] | None = None
    soc_pct: float | None = None
    offered_current_a: float | None = None
    phases: int | None = None
    temperature_c: float | None = None
    errors: list[str] | None = None
    mode: str | None = None
    title: str | None = None
    extra: dict[str, Any] | None = None  # family values without a normalised field (evcc site pvPower, …)
    flags: list[str] | None = None  # values this message carried that were implausible and not used
    raw_topic: str | None = None  # absent on readings the gateway writes itself (silence)
    raw: str | None = None  # the payload as text (invalid UTF-8 replaced), at most RAW_TEXT_LIMIT characters
    raw_seq: int | None = None  # stream sequence of the raw message in TELEMETRY


RAW_TEXT_LIMIT: Final = 4096


class MqttEvent(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``events.mqtt.{kind}``: the gateway's broker connection and what it could not read."""

    kind: str  # connected, disconnected, invalid, unmatched
    gateway: str
    at: str
    broker: str | None = None  # host:port, never credentials
    topic: str | None = None
    source: str | None = None
    device: str | None = None
    reason: str | None = None
    suppressed: int | None = None  # events of this kind held back since the last one


def camel(name: str) -> str:
    """``session_energy_wh`` → ``sessionEnergyWh`` (the wire names of :class:`Reading`)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


encode = msgspec.json.Encoder().encode
decode_reading = msgspec.json.Decoder(Reading).decode
