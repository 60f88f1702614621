"""Read-side queries over the read models. Parameterised only: values never become SQL text.

Each function takes a DuckDB cursor (``Projection.read`` runs it on a reader thread) and returns
the Structs of :mod:`projections.views`. Column and table names come from constants here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import duckdb
import msgspec

from evbus.clock import as_utc
from projections import views


def iso(column: str) -> str:
    return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ')"


def _raw(value: str | None) -> msgspec.Raw | None:
    return None if value is None else msgspec.Raw(value.encode())


def _naive(moment: datetime | None) -> datetime | None:
    """TIMESTAMP columns hold UTC without a zone; compare like with like."""
    if moment is None or moment.tzinfo is None:
        return moment
    return as_utc(moment).replace(tzinfo=None)


class Where:
    """A WHERE clause built from fixed SQL fragments and bound parameters."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, fragment: str, *params: Any) -> Where:
        self.parts.append(fragment)
        self.params.extend(params)
        return self

    def when(self, value: Any, fragment: str) -> Where:
        if value is not None:
            self.add(fragment, _naive(value) if isinstance(value, datetime) else value)
        return self

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.parts)) if self.parts else ""


@dataclass(frozen=True, slots=True)
class Page:
    limit: int = 100
    offset: int = 0


# --- messages ---------------------------------------------------------------------------------

MESSAGE_COLUMNS: Final = f"""m.seq, m.station, m.action, m.direction, m.type, m.unique_id, m.protocol,
    {iso("m.ts")}, m.payload, k.response_ms, m.error_code, m.error_description"""


def _message(row: Sequence[Any]) -> views.Message:
    return views.Message(
        id=row[0],
        identity=row[1],
        method=row[2],
        direction=row[3],
        type=row[4],
        unique_id=row[5],
        protocol=row[6],
        timestamp=row[7],
        payload=_raw(row[8]),
        response_time=None if row[9] is None else round(row[9], 3),
        error_code=row[10],
        error_description=row[11],
    )


@dataclass(frozen=True, slots=True)
class MessageFilter:
    identity: str | None = None
    method: str | None = None
    direction: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    connection: str | None = None

    def where(self) -> Where:
        return (
            Where()
            .when(self.identity, "station = ?")
            .when(self.method, "action = ?")
            .when(self.direction, "direction = ?")
            .when(self.type, "type = ?")
            .when(self.since, "ts >= ?")
            .when(self.until, "ts < ?")
            .when(self.connection, "connection = ?")
        )


def messages(
    cur: duckdb.DuckDBPyConnection, f: MessageFilter, page: Page, order: Literal["asc", "desc"] = "desc"
) -> tuple[list[views.Message], int]:
    where = f.where()
    direction = "ASC" if order == "asc" else "DESC"
    # First the page's rows by the narrow columns, then only those rows' wide ones (payload): a
    # filtered page is scattered over the table, and reading every matching row's payload to keep
    # 100 of them cost 40 ms at 1 M messages (bench/RESULTS.md). Rows are only ever appended, so
    # the row ids still name the same rows in the second statement.
    picked = cur.execute(
        f"SELECT rowid, seq FROM messages {where.sql()} ORDER BY seq {direction} LIMIT ? OFFSET ?",
        [*where.params, page.limit, page.offset],
    ).fetchall()
    rows = cur.execute(
        f"""SELECT {MESSAGE_COLUMNS}
        FROM (SELECT * FROM messages WHERE rowid IN (SELECT unnest(?::BIGINT[]))) m
        LEFT JOIN (SELECT seq, response_ms FROM calls WHERE seq IN (SELECT unnest(?::BIGINT[]))) k ON k.seq = m.seq
        ORDER BY m.seq {direction}""",
        [[r[0] for r in picked], [r[1] for r in picked]],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM messages {where.sql()}", where.params).fetchone()
    return [_message(r) for r in rows], int(total[0]) if total else 0


# --- connections ------------------------------------------------------------------------------

CONNECTION_COLUMNS: Final = f"""c.station, c.connection_id, c.remote_address, c.protocol, c.gateway,
    {iso("c.connected_at")}, {iso("c.disconnected_at")}, c.close_code, c.reason,
    c.message_count, {iso("c.last_message_at")}"""

# a DELETE /api/connections/{id} is an `events.admin.{station}.forget_connections` event: rows of
# connections closed before it are hidden, so a rebuild hides the same ones
VISIBLE: Final = """NOT EXISTS (
    SELECT 1 FROM events e WHERE e.kind = 'admin' AND e.name = 'forget_connections'
      AND e.station = c.station AND c.disconnected_at IS NOT NULL AND c.disconnected_at <= e.ts)"""


def _connection(row: Sequence[Any]) -> views.Connection:
    return views.Connection(
        identity=row[0],
        connection_id=row[1],
        remote_address=row[2],
        protocol=row[3],
        gateway=row[4],
        connected_at=row[5],
        disconnected_at=row[6],
        close_code=row[7],
        reason=row[8],
        status="offline" if row[6] else "online",
        message_count=row[9],
        last_message_at=row[10],
    )


def connections(
    cur: duckdb.DuckDBPyConnection,
    status: str = "all",
    protocol: str | None = None,
    identity: str | None = None,
    page: Page = Page(),
) -> tuple[list[views.Connection], int]:
    where = Where().add(VISIBLE).when(protocol, "c.protocol = ?").when(identity, "c.station = ?")
    if status == "online":
        where.add("c.disconnected_at IS NULL")
    elif status == "offline":
        where.add("c.disconnected_at IS NOT NULL")
    rows = cur.execute(
        f"""SELECT {CONNECTION_COLUMNS} FROM connections c {where.sql()}
        ORDER BY c.connected_at DESC, c.seq DESC LIMIT ? OFFSET ?""",
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM connections c {where.sql()}", where.params).fetchone()
    return [_connection(r) for r in rows], int(total[0]) if total else 0


def connection(cur: duckdb.DuckDBPyConnection, identity: str, recent: int = 20) -> views.ConnectionDetail | None:
    history, _ = connections(cur, identity=identity, page=Page(limit=50))
    if not history:
        return None
    current = history[0]
    recent_messages, _ = messages(cur, MessageFilter(identity=identity), Page(limit=recent))
    return views.ConnectionDetail(
        **msgspec.structs.asdict(current), recent_messages=recent_messages, history=history[1:]
    )


def online(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.execute("SELECT count(*) FROM connections WHERE disconnected_at IS NULL").fetchone()
    return int(row[0]) if row else 0


# --- stations ---------------------------------------------------------------------------------

STATION_COLUMNS: Final = f"""s.station, s.protocol,
    EXISTS (SELECT 1 FROM connections c WHERE c.station = s.station AND c.disconnected_at IS NULL),
    {iso("s.first_seen_at")}, {iso("s.last_seen_at")}, s.vendor, s.model, s.serial_number,
    s.firmware_version, {iso("s.boot_at")}, s.boot_status, s.heartbeat_interval, {iso("s.last_heartbeat_at")}"""


def _connectors(cur: duckdb.DuckDBPyConnection, stations: list[str]) -> dict[str, list[views.Connector]]:
    if not stations:
        return {}
    rows = cur.execute(
        f"""SELECT k.station, k.evse_id, k.connector_id, k.status, k.error_code, k.info, k.vendor_error_code,
                   {iso("k.station_time")}, {iso("k.updated_at")}, s.protocol
        FROM connectors k JOIN stations s USING (station)
        WHERE list_contains(?, k.station) ORDER BY k.station, k.evse_id, k.connector_id""",
        [stations],
    ).fetchall()
    found: dict[str, list[views.Connector]] = {}
    for r in rows:
        found.setdefault(r[0], []).append(
            views.Connector(
                evse_id=None if r[9] == "ocpp1.6" else r[1],
                connector_id=r[2],
                status=r[3],
                error_code=r[4],
                info=r[5],
                vendor_error_code=r[6],
                station_time=r[7],
                updated_at=r[8],
            )
        )
    return found


def _station(row: Sequence[Any], connectors: list[views.Connector]) -> views.Station:
    return views.Station(
        identity=row[0],
        protocol=row[1],
        online=bool(row[2]),
        first_seen_at=row[3],
        last_seen_at=row[4],
        vendor=row[5],
        model=row[6],
        serial_number=row[7],
        firmware_version=row[8],
        boot_at=row[9],
        boot_status=row[10],
        heartbeat_interval=row[11],
        last_heartbeat_at=row[12],
        connectors=connectors,
    )


def stations(
    cur: duckdb.DuckDBPyConnection,
    page: Page = Page(),
    online_only: bool | None = None,
) -> tuple[list[views.Station], int]:
    where = Where()
    if online_only is not None:
        where.add(
            ("" if online_only else "NOT ")
            + "EXISTS (SELECT 1 FROM connections c WHERE c.station = s.station AND c.disconnected_at IS NULL)"
        )
    rows = cur.execute(
        f"SELECT {STATION_COLUMNS} FROM stations s {where.sql()} ORDER BY s.station LIMIT ? OFFSET ?",
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM stations s {where.sql()}", where.params).fetchone()
    connectors = _connectors(cur, [r[0] for r in rows])
    return [_station(r, connectors.get(r[0], [])) for r in rows], int(total[0]) if total else 0


def station(cur: duckdb.DuckDBPyConnection, identity: str, now: datetime | None = None) -> views.StationDetail | None:
    """One station with its connection, active transactions, open reservations (as of ``now``,
    default the wall clock) and what it last reported on firmware and diagnostics uploads."""
    row = cur.execute(
        f"""SELECT {STATION_COLUMNS}, s.firmware_status, {iso("s.firmware_status_at")},
                   s.diagnostics_status, {iso("s.diagnostics_status_at")}
        FROM stations s WHERE s.station = ?""",
        [identity],
    ).fetchone()
    if row is None:
        return None
    base = _station(row, _connectors(cur, [identity]).get(identity, []))
    current, _ = connections(cur, identity=identity, page=Page(limit=1))
    active, _ = transactions(cur, TransactionFilter(identity=identity, active=True, source="ocpp"), Page(limit=20))
    open_reservations, _ = reservations(cur, now or datetime.now(UTC), identity=identity, open_only=True)
    return views.StationDetail(
        **msgspec.structs.asdict(base),
        connection=current[0] if current else None,
        active_transactions=active,
        firmware_status=row[13],
        firmware_status_at=row[14],
        diagnostics_status=row[15],
        diagnostics_status_at=row[16],
        reservations=open_reservations,
    )


def station_exists(cur: duckdb.DuckDBPyConnection, identity: str) -> bool:
    return cur.execute("SELECT 1 FROM stations WHERE station = ?", [identity]).fetchone() is not None


# --- liveness ---------------------------------------------------------------------------------

LivenessSort = Literal["identity", "lastSeen", "silence"]


def liveness(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    threshold: float | None,
    default_interval: int,
    sort: LivenessSort = "silence",
) -> views.LivenessSnapshot:
    """Each station's last sign of life against a threshold: the one asked for, or twice the
    heartbeat interval the station was given (plus a minute for clocks and queues)."""
    order = {"identity": "s.station", "lastSeen": "s.last_seen_at DESC NULLS LAST, s.station"}.get(
        sort, "silent DESC, seconds DESC NULLS FIRST, s.station"
    )
    rows = cur.execute(
        f"""SELECT s.station,
                   EXISTS (SELECT 1 FROM connections c WHERE c.station = s.station AND c.disconnected_at IS NULL),
                   {iso("s.last_seen_at")},
                   date_diff('millisecond', s.last_seen_at, ?) / 1000.0 AS seconds,
                   coalesce(?, 2 * coalesce(s.heartbeat_interval, ?) + 60) AS threshold,
                   seconds IS NULL OR seconds > threshold AS silent
            FROM stations s ORDER BY {order}""",
        [_naive(now), threshold, default_interval],
    ).fetchall()
    return views.LivenessSnapshot(
        generated_at=now.isoformat().replace("+00:00", "Z"),
        threshold_seconds=threshold,
        stations=[
            views.Liveness(
                identity=r[0],
                online=bool(r[1]),
                last_seen_at=r[2],
                seconds_since_seen=r[3],
                threshold_seconds=float(r[4]),
                status="silent" if r[5] else "alive",
            )
            for r in rows
        ],
    )


# --- metrics ----------------------------------------------------------------------------------


def action_metrics(
    cur: duckdb.DuckDBPyConnection, now: datetime, call_timeout: float, identity: str | None = None
) -> list[views.ActionMetrics]:
    where = Where().when(identity, "station = ?")
    rows = cur.execute(
        # one quantile_cont with a list of fractions sorts each group once, not three times
        f"""SELECT action, direction, n, answered, errors, timeouts, pending, avg_ms, q[1], q[2], q[3], max_ms
        FROM (
            SELECT action, direction, count(*) AS n,
                   count(*) FILTER (outcome IS NOT NULL) AS answered,
                   count(*) FILTER (outcome = 'error') AS errors,
                   count(*) FILTER (outcome IS NULL AND ts < ?::TIMESTAMP - to_microseconds(?)) AS timeouts,
                   count(*) FILTER (outcome IS NULL AND ts >= ?::TIMESTAMP - to_microseconds(?)) AS pending,
                   avg(response_ms) AS avg_ms, quantile_cont(response_ms, [0.5, 0.95, 0.99]) AS q,
                   max(response_ms) AS max_ms
            FROM calls {where.sql()} GROUP BY action, direction
        ) ORDER BY action, direction""",
        [_naive(now), int(call_timeout * 1e6), _naive(now), int(call_timeout * 1e6), *where.params],
    ).fetchall()

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return [
        views.ActionMetrics(
            action=r[0],
            direction=r[1],
            count=r[2],
            answered=r[3],
            errors=r[4],
            timeouts=r[5],
            pending=r[6],
            avg_ms=ms(r[7]),
            p50_ms=ms(r[8]),
            p95_ms=ms(r[9]),
            p99_ms=ms(r[10]),
            max_ms=ms(r[11]),
        )
        for r in rows
    ]


# --- transactions -----------------------------------------------------------------------------

# OCPP transactions and MQTT devices' charging sessions (``device_sessions``) in one shape: an
# MQTT session's id is ``mqtt:{device id}:{n}`` (device ids hold no ``:``; a 2.x station choosing
# such an id is told apart by ``identity``, as two stations sharing an id are), its identity the
# device id. An active session's energy is live: the OCPP meter's last register, the device's
# current session energy (or counter). Every column here comes from one of the two tables; the
# filters of :class:`TransactionFilter` apply to both alike.
ALL_TRANSACTIONS: Final = """(
    SELECT transaction_id, station, protocol, evse_id, connector_id, id_tag, started_at, stopped_at,
           meter_start, meter_stop, coalesce(meter_stop, meter_last) - meter_start AS energy_wh,
           stop_reason, status, 'ocpp' AS source, start_seq
    FROM transactions
    UNION ALL
    SELECT 'mqtt:' || s.device_id || ':' || s.n, s.device_id, NULL, NULL, NULL, NULL, s.started_at, s.stopped_at,
           s.meter_start, s.meter_stop,
           CASE WHEN s.status = 'completed' THEN coalesce(s.session_energy_wh, s.meter_stop - s.meter_start)
                ELSE coalesce(d.session_energy_wh, d.energy_wh - s.meter_start) END,
           NULL, s.status, 'mqtt', s.start_seq
    FROM device_sessions s LEFT JOIN devices d ON d.id = s.device_id
) t"""

TRANSACTION_COLUMNS: Final = f"""t.transaction_id, t.station, t.protocol, t.evse_id, t.connector_id, t.id_tag,
    {iso("t.started_at")}, {iso("t.stopped_at")}, t.meter_start, t.meter_stop, t.energy_wh, t.stop_reason, t.status,
    t.source"""


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    active: bool | None = None
    identity: str | None = None
    id_tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: Literal["ocpp", "mqtt"] | None = None

    def where(self) -> Where:
        where = (
            Where()
            .when(self.identity, "t.station = ?")
            .when(self.id_tag, "t.id_tag = ?")
            .when(self.since, "t.started_at >= ?")
            .when(self.until, "t.started_at < ?")
            .when(self.source, "t.source = ?")
        )
        if self.active is not None:
            where.add("t.status = ?", "active" if self.active else "completed")
        return where


def _transaction(r: Sequence[Any]) -> views.Transaction:
    return views.Transaction(
        transaction_id=r[0],
        identity=r[1],
        protocol=r[2],
        evse_id=None if r[2] == "ocpp1.6" else r[3],
        connector_id=r[4],
        id_tag=r[5],
        started_at=r[6],
        stopped_at=r[7],
        meter_start=r[8],
        meter_stop=r[9],
        energy_wh=r[10],
        stop_reason=r[11],
        status=r[12],
        source=r[13],
    )


def transactions(
    cur: duckdb.DuckDBPyConnection,
    f: TransactionFilter,
    page: Page | None = Page(),
) -> tuple[list[views.Transaction], int]:
    """Newest first, OCPP and MQTT alike. ``page=None`` returns every match (CSV export)."""
    where = f.where()
    limit = "" if page is None else "LIMIT ? OFFSET ?"
    bounds = [] if page is None else [page.limit, page.offset]
    rows = cur.execute(
        f"""SELECT {TRANSACTION_COLUMNS} FROM {ALL_TRANSACTIONS} {where.sql()}
        ORDER BY t.started_at DESC NULLS LAST, t.start_seq DESC, t.source {limit}""",
        [*where.params, *bounds],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM {ALL_TRANSACTIONS} {where.sql()}", where.params).fetchone()
    return [_transaction(r) for r in rows], int(total[0]) if total else 0


SESSION_METER_VALUES: Final = 1000  # readings of an MQTT session shown as its meter values, at most


def transaction(
    cur: duckdb.DuckDBPyConnection, transaction_id: str, identity: str | None = None
) -> list[views.TransactionDetail]:
    """Every transaction with this id (2.x ids are the station's own, so two stations may share one).
    An MQTT session's meter values are its device's energy counter and power readings (the first
    :data:`SESSION_METER_VALUES` readings)."""
    where = Where().add("t.transaction_id = ?", transaction_id).when(identity, "t.station = ?")
    rows = cur.execute(
        f"SELECT {TRANSACTION_COLUMNS}, t.start_seq FROM {ALL_TRANSACTIONS} {where.sql()} ORDER BY t.station, t.source",
        where.params,
    ).fetchall()
    found = []
    for r in rows:
        if r[13] == "mqtt":
            values = _session_meter_values(cur, r[1], r[14], transaction_id)
        else:
            values = cur.execute(
                f"""SELECT {iso("ts")}, measurand, phase, location, context, unit, value
                FROM meter_values WHERE station = ? AND transaction_id = ? ORDER BY seq, ts""",
                [r[1], r[0]],
            ).fetchall()
        found.append(
            views.TransactionDetail(
                **msgspec.structs.asdict(_transaction(r)),
                meter_values=[
                    views.MeterValue(
                        timestamp=v[0], measurand=v[1], phase=v[2], location=v[3], context=v[4], unit=v[5], value=v[6]
                    )
                    for v in values
                ],
            )
        )
    return found


def _session_meter_values(
    cur: duckdb.DuckDBPyConnection, device_id: str, start_seq: int, session_id: str
) -> list[tuple[Any, ...]]:
    """The readings of one device session as OCPP-style meter values (energy register, power)."""
    rows = cur.execute(
        f"""SELECT {iso("r.ts")}, r.energy_wh, r.power_w
        FROM readings r, device_sessions s
        WHERE s.device_id = ? AND 'mqtt:' || s.device_id || ':' || s.n = ?
          AND r.device_id = s.device_id AND r.seq >= ? AND r.seq <= coalesce(s.stop_seq, r.seq)
        ORDER BY r.seq LIMIT ?""",
        [device_id, session_id, start_seq, SESSION_METER_VALUES],
    ).fetchall()
    values: list[tuple[Any, ...]] = []
    for ts, energy, power in rows:
        if energy is not None:
            values.append((ts, "Energy.Active.Import.Register", None, None, None, "Wh", energy))
        if power is not None:
            values.append((ts, "Power.Active.Import", None, None, None, "W", power))
    return values


# --- security and other events ----------------------------------------------------------------


def security_events(
    cur: duckdb.DuckDBPyConnection,
    category: str | None,
    severity: str | None,
    identity: str | None,
    page: Page,
) -> tuple[list[views.SecurityEvent], int]:
    where = (
        Where()
        .add("kind = 'security'")
        .when(category, "name = ?")
        .when(severity, "severity = ?")
        .when(identity, "station = ?")
    )
    rows = cur.execute(
        f"""SELECT seq, name, station, detail, severity, body, {iso("ts")}
        FROM events {where.sql()} ORDER BY seq DESC LIMIT ? OFFSET ?""",
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM events {where.sql()}", where.params).fetchone()
    return [
        views.SecurityEvent(
            id=r[0], category=r[1], identity=r[2], message=r[3], severity=r[4], details=_raw(r[5]), timestamp=r[6]
        )
        for r in rows
    ], int(total[0]) if total else 0


# --- commands ---------------------------------------------------------------------------------

COMMAND_COLUMNS: Final = f"""command_id, station, action, command, status, outcome,
    {iso("requested_at")}, {iso("sent_at")}, {iso("finished_at")}, request, response,
    error_code, error_description, error_details, duration_ms, requested_by, detail"""


def _command(r: Sequence[Any]) -> views.Command:
    return views.Command(
        command_id=r[0],
        identity=r[1],
        action=r[2],
        command=r[3],
        status=r[4],
        outcome=r[5],
        requested_at=r[6],
        sent_at=r[7],
        finished_at=r[8],
        request=_raw(r[9]),
        response=_raw(r[10]),
        error_code=r[11],
        error_description=r[12],
        error_details=_raw(r[13]),
        duration_ms=None if r[14] is None else round(r[14], 3),
        requested_by=r[15],
        detail=r[16],
    )


@dataclass(frozen=True, slots=True)
class CommandFilter:
    identity: str | None = None
    status: str | None = None
    action: str | None = None

    def where(self) -> Where:
        return (
            Where().when(self.identity, "station = ?").when(self.status, "status = ?").when(self.action, "action = ?")
        )


def command(cur: duckdb.DuckDBPyConnection, command_id: str) -> views.Command | None:
    row = cur.execute(f"SELECT {COMMAND_COLUMNS} FROM commands WHERE command_id = ?", [command_id]).fetchone()
    return None if row is None else _command(row)


def commands(cur: duckdb.DuckDBPyConnection, f: CommandFilter, page: Page = Page()) -> tuple[list[views.Command], int]:
    """Newest first (by when they were requested, then by their latest event)."""
    where = f.where()
    rows = cur.execute(
        f"""SELECT {COMMAND_COLUMNS} FROM commands {where.sql()}
        ORDER BY requested_at DESC NULLS LAST, seq DESC LIMIT ? OFFSET ?""",
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM commands {where.sql()}", where.params).fetchone()
    return [_command(r) for r in rows], int(total[0]) if total else 0


# --- reservations -----------------------------------------------------------------------------

# reservations with their status as of a moment (the one parameter): one still open when its
# expiry passed has expired, whether or not the station said so
RESERVATIONS_AT: Final = """(
    SELECT r.* REPLACE (CASE WHEN r.status IN ('requested', 'accepted') AND r.expiry_date < ?::TIMESTAMP
                             THEN 'expired' ELSE r.status END AS status)
    FROM reservations r)"""


def reservations(
    cur: duckdb.DuckDBPyConnection,
    now: datetime,
    identity: str | None = None,
    status: str | None = None,
    page: Page = Page(),
    *,
    open_only: bool = False,
) -> tuple[list[views.Reservation], int]:
    """Newest first. ``status`` and ``open_only`` (requested or accepted) see the status as of ``now``."""
    where = Where().when(identity, "station = ?").when(status, "status = ?")
    if open_only:
        where.add("status IN ('requested', 'accepted')")
    rows = cur.execute(
        f"""SELECT reservation_id, station, connector_id, evse_id, id_tag, parent_id_tag, {iso("expiry_date")},
                   status, transaction_id, {iso("requested_at")}, {iso("updated_at")}
        FROM {RESERVATIONS_AT} {where.sql()}
        ORDER BY requested_at DESC, request_seq DESC LIMIT ? OFFSET ?""",
        [_naive(now), *where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(
        f"SELECT count(*) FROM {RESERVATIONS_AT} {where.sql()}", [_naive(now), *where.params]
    ).fetchone()
    return [
        views.Reservation(
            reservation_id=r[0],
            identity=r[1],
            connector_id=r[2],
            evse_id=r[3],
            id_tag=r[4],
            parent_id_tag=r[5],
            expiry_date=r[6],
            status=r[7],
            transaction_id=r[8],
            requested_at=r[9],
            updated_at=r[10],
        )
        for r in rows
    ], int(total[0]) if total else 0


# --- local authorization lists ----------------------------------------------------------------


def local_list(cur: duckdb.DuckDBPyConnection, identity: str) -> views.LocalList | None:
    """The station's local list (empty when evbus never set one); None for an unknown station."""
    row = cur.execute(
        f"""SELECT l.list_version, l.reported_version, l.update_type, {iso("l.updated_at")}
        FROM stations s LEFT JOIN local_lists l USING (station) WHERE s.station = ?""",
        [identity],
    ).fetchone()
    if row is None:
        return None
    entries = cur.execute(
        f"""SELECT id_tag, token_type, status, {iso("expiry_date")}, parent_id_tag
        FROM local_list_entries WHERE station = ? ORDER BY id_tag""",
        [identity],
    ).fetchall()
    return views.LocalList(
        identity=identity,
        list_version=row[0],
        reported_version=row[1],
        update_type=row[2],
        updated_at=row[3],
        entries=[
            views.LocalListEntry(id_tag=e[0], type=e[1], status=e[2], expiry_date=e[3], parent_id_tag=e[4])
            for e in entries
        ],
    )


# --- overview ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    online: int
    connections: int
    messages: int
    recent_rate: float
    avg_latency_ms: float | None
    error_rate: float
    errors: int
    security_events: int
    system_events: int


def totals(cur: duckdb.DuckDBPyConnection, now: datetime, window_s: int = 60) -> Totals:
    """Counters for the overview and telemetry: rates over the last ``window_s`` seconds."""
    since = _naive(now)
    # one pass over each table (nine scalar subqueries took four times as long at 1 M messages)
    row = cur.execute(
        """SELECT c.online, c.total, m.total, m.recent, k.latency, k.error_rate, m.errors, e.security, e.system
        FROM (SELECT count(*) FILTER (disconnected_at IS NULL) AS online, count(*) AS total FROM connections) c,
             (SELECT count(*) AS total, count(*) FILTER (ts >= ?::TIMESTAMP - to_seconds(?)) AS recent,
                     count(*) FILTER (type IN ('CALLERROR', 'CALLRESULTERROR', 'INVALID')) AS errors
              FROM messages) m,
             (SELECT avg(response_ms) AS latency,
                     coalesce(avg(CASE outcome WHEN 'error' THEN 1.0 ELSE 0.0 END), 0) AS error_rate
              FROM calls WHERE ts >= ?::TIMESTAMP - to_seconds(?) AND outcome IS NOT NULL) k,
             (SELECT count(*) FILTER (kind = 'security') AS security, count(*) FILTER (kind <> 'security') AS system
              FROM events) e""",
        [since, window_s, since, window_s],
    ).fetchone()
    assert row is not None
    return Totals(
        online=row[0],
        connections=row[1],
        messages=row[2],
        recent_rate=round(row[3] / window_s, 3),
        avg_latency_ms=None if row[4] is None else round(row[4], 3),
        error_rate=round(float(row[5]), 4),
        errors=row[6],
        security_events=row[7],
        system_events=row[8],
    )


# --- prometheus -------------------------------------------------------------------------------

LATENCY_BUCKETS_MS: Final = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


def frame_counts(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """(direction, action, type, count) over the whole message log."""
    return cur.execute(
        "SELECT direction, coalesce(action, ''), type, count(*) FROM messages GROUP BY ALL ORDER BY ALL"
    ).fetchall()


def latency_histograms(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[int], int, float]]:
    """Per (action, direction): cumulative bucket counts, count and sum of answered calls' latency."""
    # each call counted once, in the first bucket it fits (none: NULL or above the last bound);
    # bucket i's cumulative count, count(response_ms <= bound i), is the sum of buckets 0..i
    first_fit = " ".join(f"WHEN response_ms <= {b} THEN {i}" for i, b in enumerate(LATENCY_BUCKETS_MS))
    rows = cur.execute(
        f"""SELECT action, direction, histogram(CASE {first_fit} END), count(*), coalesce(sum(response_ms), 0)
        FROM calls WHERE outcome IS NOT NULL GROUP BY ALL ORDER BY action, direction"""
    ).fetchall()

    def cumulative(counts: dict[int, int] | None) -> list[int]:  # None: no call of the group fits a bucket
        return list(itertools.accumulate((counts or {}).get(i, 0) for i in range(len(LATENCY_BUCKETS_MS))))

    return [(r[0], r[1], cumulative(r[2]), r[3], r[4]) for r in rows]
