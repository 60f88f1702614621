"""Read-side queries over the MQTT devices' read models: ``devices``, ``readings``, ``device_sessions``.

Like :mod:`projections.queries`, parameterised only: column and table names come from constants
here, every value from a request is a bound parameter (hence the ``noqa: S608``: SQL assembled
from constants).

Time series. The gateway publishes a reading when something changed, not on a clock, so a value
holds from its reading until the next one: a device that charges at a steady 7 kW for an hour sends
one reading. Downsampling (:func:`buckets`) therefore treats the series as a step function: each
reading's values hold over ``[its ts, the next reading's ts)``, split at bucket boundaries, and a
bucket's mean weights each value by how long it held in the bucket (a plain mean of the readings in
a bucket would weigh a burst of small changes over an hour of steady power, and leave the buckets
between readings empty). The value in effect when the range starts (the last reading before it)
counts for the first bucket; measured values (power, currents, voltages, temperature) of a device
marked offline are unknown, not held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import duckdb
import msgspec

from projections import views
from projections.queries import Page, TransactionFilter, Where, _naive, _raw, iso, transactions

DeviceStatus = Literal["connected", "disconnected", "all"]
_FIRST: Final = Page()

DEVICE_COLUMNS: Final = f"""d.id, d.source, d.device, d.kind, {iso("d.first_seen_at")}, {iso("d.updated_at")},
    {iso("d.last_seen_at")}, coalesce(d.online, false), d.connected, d.online, d.state, d.state_raw, d.charging,
    d.enabled, d.power_w, d.energy_wh, d.session_energy_wh, d.currents_a, d.voltages_v, d.soc_pct,
    d.offered_current_a, d.phases, d.temperature_c, d.errors, d.mode, d.title, d.extra, d.flags, d.retained"""


def _device(r: Sequence[Any]) -> views.Device:
    return views.Device(
        id=r[0],
        source=r[1],
        device=r[2],
        kind=r[3],
        first_seen_at=r[4],
        updated_at=r[5],
        last_seen_at=r[6],
        connected=r[7],
        vehicle_connected=r[8],
        online=r[9],
        state=r[10],
        state_raw=r[11],
        charging=r[12],
        enabled=r[13],
        power_w=r[14],
        energy_wh=r[15],
        session_energy_wh=r[16],
        currents_a=r[17],
        voltages_v=r[18],
        soc_pct=r[19],
        offered_current_a=r[20],
        phases=r[21],
        temperature_c=r[22],
        errors=r[23],
        mode=r[24],
        title=r[25],
        extra=_raw(r[26]),
        flags=r[27],
        retained=r[28],
    )


def devices(
    cur: duckdb.DuckDBPyConnection, status: DeviceStatus = "all", source: str | None = None, page: Page = _FIRST
) -> tuple[list[views.Device], int]:
    """By id. ``connected``: the device is present (``online`` is true); ``disconnected``: it is
    not, or that is unknown."""
    where = Where().when(source, "d.source = ?")
    if status == "connected":
        where.add("d.online IS TRUE")
    elif status == "disconnected":
        where.add("d.online IS NOT TRUE")
    rows = cur.execute(
        f"SELECT {DEVICE_COLUMNS} FROM devices d {where.sql()} ORDER BY d.id LIMIT ? OFFSET ?",  # noqa: S608
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM devices d {where.sql()}", where.params).fetchone()  # noqa: S608
    return [_device(r) for r in rows], int(total[0]) if total else 0


def device_exists(cur: duckdb.DuckDBPyConnection, device_id: str) -> bool:
    return cur.execute("SELECT 1 FROM devices WHERE id = ?", [device_id]).fetchone() is not None


def device(cur: duckdb.DuckDBPyConnection, device_id: str, recent: int = 20) -> views.DeviceDetail | None:
    """One device with its latest reading as stored, its newest readings and charging sessions."""
    row = cur.execute(
        f"SELECT {DEVICE_COLUMNS}, d.reading FROM devices d WHERE d.id = ?",  # noqa: S608
        [device_id],
    ).fetchone()
    if row is None:
        return None
    latest = cur.execute(
        f"SELECT {READING_COLUMNS} FROM readings WHERE device_id = ? ORDER BY seq DESC LIMIT ?",  # noqa: S608
        [device_id, recent],
    ).fetchall()
    sessions, _ = transactions(cur, TransactionFilter(identity=device_id, source="mqtt"), Page(limit=recent))
    return views.DeviceDetail(
        **msgspec.structs.asdict(_device(row)),
        reading=_raw(row[29]),
        recent_readings=[_reading(r) for r in latest],
        sessions=sessions,
    )


# --- time series ------------------------------------------------------------------------------

READING_COLUMNS: Final = f"""seq, {iso("ts")}, retained, online, connected, charging, power_w, energy_wh,
    session_energy_wh, current_l1, current_l2, current_l3, voltage_l1, voltage_l2, voltage_l3, soc_pct,
    offered_current_a, phases, temperature_c"""


def _reading(r: Sequence[Any]) -> views.DeviceReading:
    return views.DeviceReading(
        seq=r[0],
        ts=r[1],
        retained=r[2],
        online=r[3],
        vehicle_connected=r[4],
        charging=r[5],
        power_w=r[6],
        energy_wh=r[7],
        session_energy_wh=r[8],
        currents_a=[r[9], r[10], r[11]],
        voltages_v=[r[12], r[13], r[14]],
        soc_pct=r[15],
        offered_current_a=r[16],
        phases=r[17],
        temperature_c=r[18],
    )


@dataclass(frozen=True, slots=True)
class Span:
    """A device's readings from ``since`` (inclusive) to ``until`` (exclusive), UTC."""

    device_id: str
    since: datetime
    until: datetime


def readings(cur: duckdb.DuckDBPyConnection, span: Span, page: Page) -> tuple[list[views.DeviceReading], int]:
    """The readings in ``span`` as they came, oldest first."""
    where = (
        Where()
        .add("device_id = ?", span.device_id)
        .add("ts >= ?", _naive(span.since))
        .add("ts < ?", _naive(span.until))
    )
    rows = cur.execute(
        f"SELECT {READING_COLUMNS} FROM readings {where.sql()} ORDER BY seq LIMIT ? OFFSET ?",  # noqa: S608
        [*where.params, page.limit, page.offset],
    ).fetchall()
    total = cur.execute(f"SELECT count(*) FROM readings {where.sql()}", where.params).fetchone()  # noqa: S608
    return [_reading(r) for r in rows], int(total[0]) if total else 0


_STEP_VALUES: Final = """ts, seq, online, charging, power_w, energy_wh, session_energy_wh, current_l1, current_l2,
    current_l3, voltage_l1, voltage_l2, voltage_l3, soc_pct, offered_current_a, temperature_c"""


def _held_mean(column: str) -> str:
    """The time-weighted mean of ``column`` over the part of the bucket where it was known."""
    known = f"live AND {column} IS NOT NULL"
    return f"sum({column} * held) FILTER ({known}) / nullif(sum(held) FILTER ({known}), 0)"


# $id, $since, $until, $width (INTERVAL): every bucket of [since, until) in which a value was known
BUCKETS: Final = f"""
WITH r AS (
    SELECT {_STEP_VALUES} FROM readings WHERE device_id = $id AND ts >= $since AND ts < $until
    UNION ALL
    (SELECT {_STEP_VALUES} FROM readings WHERE device_id = $id AND ts < $since ORDER BY ts DESC, seq DESC LIMIT 1)
), steps AS (
    SELECT *, greatest(ts, $since) AS a, coalesce(lead(ts) OVER (ORDER BY ts, seq), $until) AS b,
           online IS NOT FALSE AS live
    FROM r
), pieces AS (
    SELECT *, date_diff('microsecond', greatest(a, start), least(b, start + $width)) / 1e6 AS held
    FROM (SELECT *, unnest(range(time_bucket($width, a), b, $width)) AS start FROM steps WHERE b > a)
), arrived AS (
    SELECT time_bucket($width, ts) AS start, count(*) AS n FROM r WHERE ts >= $since GROUP BY ALL
)
SELECT {iso("p.start")}, coalesce(any_value(arrived.n), 0),
       {_held_mean("power_w")}, min(power_w) FILTER (live), max(power_w) FILTER (live),
       arg_max(energy_wh, seq), arg_max(session_energy_wh, seq),
       {_held_mean("current_l1")}, {_held_mean("current_l2")}, {_held_mean("current_l3")},
       {_held_mean("voltage_l1")}, {_held_mean("voltage_l2")}, {_held_mean("voltage_l3")},
       arg_max(soc_pct, seq), arg_max(offered_current_a, seq), {_held_mean("temperature_c")},
       arg_max(charging, seq)
FROM pieces p LEFT JOIN arrived USING (start)
GROUP BY p.start ORDER BY p.start"""  # noqa: S608


def bucket_count(since: datetime, until: datetime, width: timedelta) -> int:
    """How many buckets of ``width`` :func:`buckets` can answer for ``[since, until)`` (the first
    starts at or before ``since``, on a multiple of ``width``)."""
    span = (until - since) / width
    return int(span) + 2 if span > 0 else 0


def buckets(cur: duckdb.DuckDBPyConnection, span: Span, width: timedelta) -> list[views.ReadingBucket]:
    rows = cur.execute(
        BUCKETS,
        {
            "id": span.device_id,
            "since": _naive(span.since),
            "until": _naive(span.until),
            "width": width,
        },
    ).fetchall()

    def value(v: float | None) -> float | None:
        return None if v is None else round(v, 6)

    return [
        views.ReadingBucket(
            ts=r[0],
            readings=r[1],
            power_w=value(r[2]),
            power_min_w=r[3],
            power_max_w=r[4],
            energy_wh=r[5],
            session_energy_wh=r[6],
            currents_a=[value(r[7]), value(r[8]), value(r[9])],
            voltages_v=[value(r[10]), value(r[11]), value(r[12])],
            soc_pct=r[13],
            offered_current_a=r[14],
            temperature_c=value(r[15]),
            charging=r[16],
        )
        for r in rows
    ]
