"""Operations routes (the Pipelet server's capabilities): stations, liveness, action metrics,
stream state, transactions and replay."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from api.monitoring import Limit, Offset, listing, page
from api.services import Services, Svc
from evbus import replay as replaying
from projections import queries, runner, views
from schemas import subjects

# --- stations ---------------------------------------------------------------------------------


@get("/api/stations", operation_id="listStations", tags=["operations"])
async def list_stations(
    svc: Svc, online: FromQuery[bool | None] = None, limit: Limit = 100, offset: Offset = 0
) -> Response[list[views.Station]]:
    rows, total = await svc.projection.read(lambda cur: queries.stations(cur, page(limit, offset), online))
    return listing(rows, total)


@get("/api/stations/{identity:str}", operation_id="getStation", tags=["operations"])
async def get_station(svc: Svc, identity: FromPath[str]) -> views.StationDetail:
    now = svc.now()
    found = await svc.projection.read(lambda cur: queries.station(cur, identity, now))
    if found is None:
        raise NotFoundException(f"unknown station {identity!r}")
    return found


@get("/api/liveness", operation_id="liveness", tags=["operations"])
async def liveness(
    svc: Svc,
    threshold: FromQuery[float | None] = None,
    sort: FromQuery[Literal["identity", "lastSeen", "silence"]] = "silence",
) -> views.LivenessSnapshot:
    """Last sign of life per station. ``threshold`` (seconds) overrides each station's own
    (twice its heartbeat interval plus a minute)."""
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise HTTPException(status_code=400, detail="invalid parameter 'threshold': must be a number > 0")
    now = svc.now()
    interval = svc.settings.heartbeat_interval
    return await svc.projection.read(lambda cur: queries.liveness(cur, now, threshold, interval, sort))


@get("/api/metrics/actions", operation_id="actionMetrics", tags=["operations"])
async def action_metrics(svc: Svc, identity: FromQuery[str | None] = None) -> list[views.ActionMetrics]:
    """Per action and direction (IN = the station's CALLs): count, CALLERRORs, timeouts, latency."""
    now = svc.now()
    timeout = svc.settings.call_timeout
    return await svc.projection.read(lambda cur: queries.action_metrics(cur, now, timeout, identity))


# --- streams ----------------------------------------------------------------------------------


class ConsumerState(msgspec.Struct, rename="camel"):
    name: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    delivered_seq: int


class StreamState(msgspec.Struct, rename="camel"):
    name: str
    subjects: list[str]
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: list[ConsumerState]
    projected_seq: int | None
    projection_lag: int | None


@get("/api/streams", operation_id="streams", tags=["operations"])
async def streams(svc: Svc) -> list[StreamState]:
    """JetStream state of each stream, its durable consumers, and how far this API's projection is."""
    return await stream_states(svc)


async def stream_states(svc: Services) -> list[StreamState]:
    """What ``/api/streams`` shows and ``/metrics`` exports as lag gauges."""
    found = []
    for name in (subjects.STREAM_OCPP, subjects.STREAM_EVENTS, subjects.STREAM_TELEMETRY):
        info = await svc.js.stream_info(name)
        consumers = []
        for c in await svc.js.consumers_info(name):
            if c.config.durable_name:
                consumers.append(
                    ConsumerState(
                        name=c.name,
                        num_pending=c.num_pending or 0,
                        num_ack_pending=c.num_ack_pending or 0,
                        num_redelivered=c.num_redelivered or 0,
                        delivered_seq=c.delivered.stream_seq if c.delivered else 0,
                    )
                )
        projected = svc.projection.positions.get(name)
        state = info.state
        # the lag is a distance in stream sequences; TELEMETRY's projection reads its readings only, so
        # its lag runs to the last reading, and the raw messages between its readings count too
        found.append(
            StreamState(
                name=name,
                subjects=list(info.config.subjects or []),
                messages=state.messages,
                bytes=state.bytes,
                first_seq=state.first_seq,
                last_seq=state.last_seq,
                consumers=consumers,
                projected_seq=projected,
                projection_lag=None if projected is None else max(0, await runner.head(svc.js, name) - projected),
            )
        )
    return found


# --- transactions -----------------------------------------------------------------------------

CSV_FIELDS = [f.encode_name for f in msgspec.structs.fields(views.Transaction)]


@get("/api/transactions", operation_id="listTransactions", tags=["operations"])
async def list_transactions(
    svc: Svc,
    active: FromQuery[bool | None] = None,
    identity: FromQuery[str | None] = None,
    id_tag: Annotated[str | None, QueryParameter(name="idTag")] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    source: FromQuery[Literal["ocpp", "mqtt"] | None] = None,
    format: FromQuery[Literal["json", "csv"]] = "json",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[Any]:
    """Charging sessions: OCPP 1.6 and 2.x transactions and MQTT devices' sessions alike, each
    with its ``source``. An MQTT session's ``transactionId`` is ``mqtt:{device id}:{n}`` and its
    ``identity`` the device id (``/api/devices``). ``format=csv`` exports every match."""
    f = queries.TransactionFilter(
        active=active, identity=identity, id_tag=id_tag, since=since, until=until, source=source
    )
    bounds = None if format == "csv" else page(limit, offset)
    rows, total = await svc.projection.read(lambda cur: queries.transactions(cur, f, bounds))
    if format == "json":
        return listing(rows, total)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(msgspec.to_builtins(row))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"X-Total-Count": str(total), "Content-Disposition": 'attachment; filename="transactions.csv"'},
    )


@get("/api/transactions/{transaction_id:str}", operation_id="getTransaction", tags=["operations"])
async def get_transaction(
    svc: Svc, transaction_id: FromPath[str], identity: FromQuery[str | None] = None
) -> views.TransactionDetail:
    """One transaction or MQTT session (``mqtt:{device id}:{n}``) with its meter values; an id two
    stations share needs ``identity``."""
    found = await svc.projection.read(lambda cur: queries.transaction(cur, transaction_id, identity))
    if not found:
        raise NotFoundException(f"unknown transaction {transaction_id!r}")
    if len(found) > 1:
        stations = sorted(t.identity for t in found)
        raise HTTPException(
            status_code=409, detail=f"transaction {transaction_id!r} exists on {stations}; add ?identity="
        )
    return found[0]


# --- replay -----------------------------------------------------------------------------------


@get("/api/replay", operation_id="replay", tags=["operations"], media_type="application/x-ndjson")
async def replay(
    svc: Svc,
    identity: FromQuery[str],
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
) -> Stream:
    """The station's frames from the OCPP stream as NDJSON, one stored message per line: stream
    sequence, subject, headers and the frame text byte for byte. ``since`` defaults to 24 h ago."""
    if not await svc.projection.read(lambda cur: queries.station_exists(cur, identity)):
        raise NotFoundException(f"unknown station {identity!r}")
    start = since or svc.now() - timedelta(hours=24)
    return Stream(replaying.ndjson(svc.nc, identity, start, until), media_type="application/x-ndjson")


ROUTES = [
    list_stations,
    get_station,
    liveness,
    action_metrics,
    streams,
    list_transactions,
    get_transaction,
    replay,
]
