"""The shapes the read models are served in: msgspec Structs, camelCase on the wire (DESIGN §7).

Payloads stay ``msgspec.Raw``: the JSON DuckDB holds goes to the client without being decoded and
encoded again.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class View(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class Message(View):
    id: int
    identity: str
    method: str | None
    direction: Literal["IN", "OUT"]
    type: str
    unique_id: str | None
    protocol: str | None
    timestamp: str
    payload: msgspec.Raw | None
    response_time: float | None = None
    error_code: str | None = None
    error_description: str | None = None


class Connection(View):
    identity: str
    connection_id: str
    remote_address: str | None
    protocol: str | None
    gateway: str | None
    connected_at: str
    disconnected_at: str | None
    close_code: int | None
    reason: str | None
    status: Literal["online", "offline"]
    message_count: int
    last_message_at: str | None


class ConnectionDetail(Connection):
    recent_messages: list[Message] = []
    history: list[Connection] = []


class Connector(View):
    evse_id: int | None
    connector_id: int
    status: str | None
    error_code: str | None
    info: str | None
    vendor_error_code: str | None
    station_time: str | None
    updated_at: str


class Station(View):
    identity: str
    protocol: str | None
    online: bool
    first_seen_at: str | None
    last_seen_at: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    boot_at: str | None
    boot_status: str | None
    heartbeat_interval: int | None
    last_heartbeat_at: str | None
    connectors: list[Connector] = []


class StationDetail(Station):
    connection: Connection | None = None
    active_transactions: list[Transaction] = []
    firmware_status: str | None = None  # the last FirmwareStatusNotification
    firmware_status_at: str | None = None
    diagnostics_status: str | None = None  # the last DiagnosticsStatusNotification / LogStatusNotification
    diagnostics_status_at: str | None = None
    reservations: list[Reservation] = []  # the open ones: requested or accepted, not expired


class Liveness(View):
    identity: str
    online: bool
    last_seen_at: str | None
    seconds_since_seen: float | None
    threshold_seconds: float
    status: Literal["alive", "silent"]


class LivenessSnapshot(View):
    generated_at: str
    threshold_seconds: float | None
    stations: list[Liveness]


class ActionMetrics(View):
    action: str
    direction: Literal["IN", "OUT"]
    count: int
    answered: int
    errors: int
    timeouts: int
    pending: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class MeterValue(View):
    timestamp: str | None
    measurand: str | None
    phase: str | None
    location: str | None
    context: str | None
    unit: str | None
    value: float | None


class Transaction(View):
    transaction_id: str
    identity: str
    protocol: str | None
    evse_id: int | None
    connector_id: int | None
    id_tag: str | None
    started_at: str | None
    stopped_at: str | None
    meter_start: float | None
    meter_stop: float | None
    energy_wh: float | None
    stop_reason: str | None
    status: Literal["active", "completed"]
    source: Literal["ocpp", "mqtt"] = "ocpp"


class TransactionDetail(Transaction):
    meter_values: list[MeterValue] = []


class SecurityEvent(View):
    id: int
    category: str
    identity: str | None
    message: str | None
    severity: str | None
    details: msgspec.Raw | None
    timestamp: str


class Overview(View):
    connected_clients: int
    total_connections: int
    messages_per_second: float
    avg_latency_ms: float | None
    error_rate: float
    uptime_seconds: float
    total_messages: int
    recent_messages: list[Message]
    security_event_count: int
    error_count: int
    system_event_count: int


class MemoryUsage(View):
    rss: int
    max_rss: int


class Telemetry(View):
    messages_per_second: float
    avg_latency_ms: float | None
    error_rate: float
    connection_count: int
    peak_connections: int
    uptime_seconds: float
    total_messages: int
    memory_usage: MemoryUsage


class Command(View):
    """An operator command and how it went (events.command.*). ``request``, ``response`` and
    ``errorDetails`` are JSON as given."""

    command_id: str
    identity: str | None
    action: str | None
    command: str | None
    status: str  # of the latest event: requested | sent | answered | failed | timed_out
    outcome: str | None  # answered | error | timeout | offline | invalid | unavailable
    requested_at: str | None
    sent_at: str | None
    finished_at: str | None
    request: msgspec.Raw | None
    response: msgspec.Raw | None
    error_code: str | None
    error_description: str | None
    error_details: msgspec.Raw | None
    duration_ms: float | None
    requested_by: str | None
    detail: str | None = None  # why, for invalid / offline / unavailable


ReservationStatus = Literal[
    "requested",
    "accepted",
    "faulted",
    "occupied",
    "rejected",
    "unavailable",
    "failed",
    "cancelled",
    "used",
    "expired",
    "removed",
]


class Reservation(View):
    reservation_id: int
    identity: str
    connector_id: int | None  # 1.6
    evse_id: int | None  # 2.x
    id_tag: str | None
    parent_id_tag: str | None
    expiry_date: str | None
    status: str  # a ReservationStatus
    transaction_id: str | None
    requested_at: str
    updated_at: str


class LocalListEntry(View):
    id_tag: str
    type: str | None  # 2.x idToken type
    status: str
    expiry_date: str | None
    parent_id_tag: str | None


class LocalList(View):
    """A station's local authorization list as the SendLocalList updates it accepted left it."""

    identity: str
    list_version: int | None
    reported_version: int | None  # from its last GetLocalListVersion answer
    update_type: str | None
    updated_at: str | None
    entries: list[LocalListEntry] = []


class Device(View):
    """An MQTT device (DESIGN §7 ``device``): where it is (``id``, ``source``, ``device``), whether
    it is there, and the normalised fields of its latest reading (schemas/telemetry.py), camelCase.

    Two kinds of "connected", named apart: ``connected`` is the *device's* presence, as for a
    station's connection (``online`` is true: it sent a live message lately, or its LWT/status topic
    says it is up; false while that is unknown); ``vehicleConnected`` is the reading's own
    ``connected``, a vehicle plugged in. ``online`` is the reading's presence as it is (``null``:
    unknown). Every other field is ``null`` when the device does not report it or erased it; never
    0. ``id`` is the reading's subject tail, ``{token(source)}.{token(device)}`` (``evcc.lp1``)."""

    id: str
    source: str
    device: str
    kind: str | None
    first_seen_at: str
    updated_at: str  # gateway time of the latest reading
    last_seen_at: str | None  # of the device's last live message (a broker replay is no sign of life)
    connected: bool
    vehicle_connected: bool | None
    online: bool | None
    state: str | None
    state_raw: str | None
    charging: bool | None
    enabled: bool | None
    power_w: float | None
    energy_wh: float | None
    session_energy_wh: float | None
    currents_a: list[float | None] | None
    voltages_v: list[float | None] | None
    soc_pct: float | None
    offered_current_a: float | None
    phases: int | None
    temperature_c: float | None
    errors: list[str] | None
    mode: str | None
    title: str | None
    extra: msgspec.Raw | None
    flags: list[str] | None  # values the latest reading carried that were implausible and not used
    retained: bool  # the latest reading came from a broker replay: it may be old


class DeviceReading(View):
    """One reading of a device's time series (``vehicleConnected`` as in :class:`Device`)."""

    seq: int  # TELEMETRY sequence
    ts: str
    retained: bool
    online: bool | None
    vehicle_connected: bool | None
    charging: bool | None
    power_w: float | None
    energy_wh: float | None
    session_energy_wh: float | None
    currents_a: list[float | None]
    voltages_v: list[float | None]
    soc_pct: float | None
    offered_current_a: float | None
    phases: int | None
    temperature_c: float | None


class ReadingBucket(View):
    """A device's readings over one bucket ``[ts, ts + bucket)``. A reading holds until the next
    (devices send values when they change), so means are weighted by the time each value held,
    over the part of the bucket where it was known (not while the device was offline); "at the
    end" values are the last known when the bucket closed."""

    ts: str  # the bucket's start
    readings: int  # readings that arrived in it
    power_w: float | None  # time-weighted mean
    power_min_w: float | None
    power_max_w: float | None
    energy_wh: float | None  # the energy counter at the end
    session_energy_wh: float | None  # at the end
    currents_a: list[float | None]  # time-weighted means per phase
    voltages_v: list[float | None]
    soc_pct: float | None  # at the end
    offered_current_a: float | None  # at the end
    temperature_c: float | None  # time-weighted mean
    charging: bool | None  # at the end


class DeviceDetail(Device):
    reading: msgspec.Raw | None = None  # the latest reading as stored (rawTopic, raw, changed, ...)
    recent_readings: list[DeviceReading] = []  # newest first
    sessions: list[Transaction] = []  # its charging sessions, newest first
