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
