"""Bodies of ``telemetry.{source}.{device}`` readings, ``events.mqtt.*`` events and the MQTT
control plane (``evbus.mqtt.{gateway}.*`` requests, KV ``mqtt_ignore`` and ``mqtt_gateways``).
camelCase on the wire.

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


# --- the MQTT control plane (docs/adr/0010-mqtt-gateway.md, "Control plane") -------------------

NONE: Final = msgspec.Raw()  # an absent JSON member: empty, falsy, omitted on encode


class MqttPresence(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``mqtt_gateways``: a running MQTT gateway (TTL, refreshed; deleted when it stops).
    The API finds the gateways to ask here, and shows their ``EVBUS_MQTT_IGNORE`` filters."""

    gateway: str
    broker: str  # address, never credentials
    started_at: str
    ignore_setting: list[str] = []


class IgnoredTopic(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``mqtt_ignore``: a topic filter an operator added; every gateway drops (does not
    store) the messages it matches, from the moment the bucket tells it."""

    filter: str
    added_by: str
    added_at: str
    note: str | None = None


class FilterOrigins(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """A gateway's ignore filters by origin: evbus's own subjects, ``EVBUS_MQTT_IGNORE``, operators'."""

    built_in: list[str]
    setting: list[str]
    operator: list[str]


class MqttStatus(msgspec.Struct, kw_only=True, rename="camel", frozen=True):
    """Reply to ``evbus.mqtt.{gateway}.status``: one gateway's broker connection and traffic."""

    gateway: str
    broker: str  # address, never credentials
    client_id: str
    connected: bool
    since: str  # connected: when it (re)connected; not connected: when it lost the broker, or started
    connects: int
    started_at: str
    subscriptions: list[str]
    refused_subscriptions: list[str] = []  # filters the broker refused at the last connect (no rights)
    messages_per_second: float  # received, over the last few seconds (not a lifetime average)
    received: int
    stored: int
    readings: int
    outcomes: dict[str, int]  # messages by what became of them (reading, unchanged, ignored, dropped, …)
    devices: int
    topics_seen: int  # distinct topics stored (remembered up to 100 000)
    unmatched_topics: list[str]  # topics no mapping knows, newest first (a bounded list)
    unmatched_topic_count: int  # distinct unmatched topics remembered (up to 1000)
    ignored: FilterOrigins


class SettingRequest(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``evbus.mqtt.{gateway}.setting``: write one setting of a device the gateway knows."""

    setting_id: str
    source: str
    device: str
    key: str
    value: msgspec.Raw = NONE  # JSON, checked and encoded by the family's table
    timeout_s: float | None = None  # how long to wait for the device's echo
    requested_by: str | None = None


SettingOutcome = Literal[
    "applied",  # published, and the device showed the new value
    "unchanged",  # published; the device showed the value already (families echo changes only)
    "sent",  # published; the family shows no echo
    "no_echo",  # published; the device did not show the value in time
    "unknown_device",
    "unknown_key",
    "invalid",
    "offline",  # the gateway is not connected to its broker: nothing published
    "failed",  # the broker did not take the message
]


class SettingReply(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Reply to ``evbus.mqtt.{gateway}.setting``."""

    setting_id: str
    gateway: str
    source: str
    device: str
    key: str
    outcome: SettingOutcome
    echoed: bool  # no default: always written
    value: msgspec.Raw = NONE  # as requested
    topic: str | None = None  # the command topic it was published on
    payload: str | None = None  # what was published, as text
    duration_ms: float | None = None
    detail: str | None = None
    valid_keys: list[str] | None = None  # with unknown_key
    hint: str | None = None  # with no_echo: why a family may not echo


class SettingWritten(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``events.mqtt.setting``: a setting the gateway wrote to a device (or could not), with
    who asked and the outcome. Requests refused before anything was published are not recorded."""

    kind: Literal["setting"]  # no default: omit_defaults would leave it out
    setting_id: str
    gateway: str
    at: str
    source: str
    device: str
    key: str
    outcome: SettingOutcome
    value: msgspec.Raw = NONE
    topic: str | None = None
    payload: str | None = None
    echoed: bool  # no default: always written
    duration_ms: float | None = None
    requested_by: str | None = None
    detail: str | None = None


class IgnoreChanged(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``events.mqtt.ignore_changed``: an operator added or removed an ignore filter."""

    kind: Literal["ignore_changed"]  # no default: omit_defaults would leave it out
    action: Literal["added", "removed"]
    filter: str
    requested_by: str
    at: str
    note: str | None = None


def camel(name: str) -> str:
    """``session_energy_wh`` → ``sessionEnergyWh`` (the wire names of :class:`Reading`)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


encode = msgspec.json.Encoder().encode
decode_reading = msgspec.json.Decoder(Reading).decode
