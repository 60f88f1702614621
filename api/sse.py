"""Server-Sent Events routes (DESIGN §7): live frames, events, security events, device readings
and telemetry.

Each route is a feed of :mod:`api.live`: the first event is ``connected`` (its ``id:`` is where the
client starts, so a reconnect before any event still resumes exactly), then data events whose
``id:`` resumes exactly with ``Last-Event-ID`` (header, or ``?lastEventId=`` where a client cannot
set headers), heartbeat comments every ``EVBUS_SSE_HEARTBEAT`` seconds, and ``overflow`` last for a
client that fell behind. Filters are the list routes' query parameters. Each token (or login
session) may hold ``EVBUS_SSE_CLIENTS_PER_TOKEN`` streams at once; one more is 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Request, get
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from api import live
from api.auth import COOKIE, bearer
from api.live import Hub, Want
from api.services import Services, Svc

log = logging.getLogger(__name__)

MEDIA_TYPE: Final = "text/event-stream"
HEADERS: Final = {"X-Accel-Buffering": "no"}  # a proxy in front must not hold events back

LastEventId = Annotated[
    str | None,
    QueryParameter(
        name="lastEventId", description="resume after this event id (for clients that cannot send Last-Event-ID)"
    ),
]
Identity = Annotated[str | None, QueryParameter(description="only this station")]


def _holder(svc: Services, request: Request[Any, Any, Any]) -> str:
    """Whose streams these are: the login session, the bearer token (by its hash), or, on an open
    API, the client's address."""
    session = request.cookies.get(COOKIE)
    if session and svc.auth.session(session) is not None:
        return "session:" + hashlib.sha256(session.encode()).hexdigest()[:16]
    token = bearer(request.headers.get("Authorization"))
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "address:" + (request.client.host if request.client else "?")


def _respond(
    svc: Services,
    request: Request[Any, Any, Any],
    sources: Sequence[tuple[Hub, Want]],
    last_event_id: str | None,
) -> Stream:
    try:
        after = live.parse_cursor(request.headers.get("Last-Event-ID") or last_event_id, len(sources))
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    settings = svc.settings

    def connected(positions: list[int]) -> bytes:
        data = msgspec.json.encode({"lastEventId": live.cursor(positions), "heartbeat": settings.sse_heartbeat})
        return live.sse("connected", data, live.cursor(positions))

    hubs = _live(svc)

    def overflowed() -> None:
        hubs.overflows += 1

    events = live.follow(
        sources,
        after,
        limit=settings.sse_client_buffer,
        heartbeat=settings.sse_heartbeat,
        connected=connected,
        overflowed=overflowed,
        transport=_chunked_transport(request),
    )
    return _stream(svc, request, events)


def _chunked_transport(request: Request[Any, Any, Any]) -> live.Transport | None:
    """The socket of this answer, where the server (api/app.py :func:`~api.app.serve`) exposes it
    and the answer is sent in HTTP/1.1 chunks (uvicorn chunks every 1.1 answer without a length)."""
    scope = request.scope
    if scope.get("http_version") != "1.1" or scope.get("method") != "GET":
        return None
    extensions: dict[str, Any] = scope.get("extensions") or {}
    return extensions.get(live.TRANSPORT_KEY)


def _stream(svc: Services, request: Request[Any, Any, Any], events: AsyncIterator[bytes]) -> Stream:
    """``events`` as the answer, counted against the requester's streams (429 when it holds
    ``EVBUS_SSE_CLIENTS_PER_TOKEN``) and given back however the stream ends, even unstarted."""
    live_ = _live(svc)
    held, holder, limit = live_.held, _holder(svc, request), svc.settings.sse_clients_per_token
    if held.get(holder, 0) >= limit:
        raise HTTPException(
            status_code=429,
            detail=f"this token already holds {limit} live streams (EVBUS_SSE_CLIENTS_PER_TOKEN)",
            headers={"Retry-After": "5"},
        )
    held[holder] = held.get(holder, 0) + 1
    given_back = False

    def give_back() -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            left = held.get(holder, 0) - 1
            if left > 0:
                held[holder] = left
            else:
                held.pop(holder, None)

    async def run() -> AsyncIterator[bytes]:
        try:
            async for chunk in events:
                yield chunk
        except Exception:
            log.exception("live stream of %s failed", request.url.path)
            raise
        finally:
            give_back()
            await events.aclose()  # type: ignore[attr-defined]

    stream = run()
    weakref.finalize(stream, give_back)
    return Stream(stream, media_type=MEDIA_TYPE, headers=HEADERS)


def _live(svc: Services) -> live.Live:
    if svc.live is None:
        raise HTTPException(status_code=503, detail="live streams are not running in this API process")
    return svc.live


def _wants(kinds: Iterable[str] | None = None, not_kinds: Iterable[str] = (), **fields: str | None) -> Want:
    """Keep an event of these kinds (not of those) when each given field equals the filter's value."""
    return Want(
        kinds=None if kinds is None else frozenset(kinds),
        not_kinds=frozenset(not_kinds),
        fields=tuple((name, value) for name, value in fields.items() if value is not None),
    )


@get("/api/messages/stream", operation_id="streamMessages", tags=["live"], media_type=MEDIA_TYPE)
async def stream_messages(
    svc: Svc,
    request: Request[Any, Any, Any],
    identity: Identity = None,
    method: Annotated[str | None, QueryParameter(description="only this action")] = None,
    direction: FromQuery[Literal["IN", "OUT"] | None] = None,
    type: FromQuery[Literal["CALL", "CALLRESULT", "CALLERROR", "CALLRESULTERROR", "SEND", "INVALID"] | None] = None,
    last_event_id: LastEventId = None,
) -> Stream:
    """Frames as they are stored: events ``message`` with the fields of ``GET /api/messages``
    (``responseTime`` is null: the answer comes later), ``id:`` = the OCPP stream sequence."""
    want = _wants(["frame"], station=identity, name=method, direction=direction, type=type)
    return _respond(svc, request, [(_live(svc).ocpp, want)], last_event_id)


@get("/api/events/stream", operation_id="streamEvents", tags=["live"], media_type=MEDIA_TYPE)
async def stream_events(
    svc: Svc,
    request: Request[Any, Any, Any],
    identity: Identity = None,
    kind: Annotated[
        str | None, QueryParameter(description="connection, command, transaction, admin, upload, …")
    ] = None,
    last_event_id: LastEventId = None,
) -> Stream:
    """Connections opening and closing (OCPP stream) and command, transaction and operator events
    (EVENTS stream): events ``event``. The ``id:`` is ``{ocppSeq}-{eventsSeq}``."""
    hubs = _live(svc)
    return _respond(
        svc,
        request,
        [
            (hubs.ocpp, _wants(["connection"], station=identity, kind=kind)),
            (hubs.events, _wants(not_kinds=["security"], station=identity, kind=kind)),
        ],
        last_event_id,
    )


@get("/api/security/stream", operation_id="streamSecurityEvents", tags=["live"], media_type=MEDIA_TYPE)
async def stream_security(
    svc: Svc,
    request: Request[Any, Any, Any],
    category: FromQuery[str | None] = None,
    severity: FromQuery[Literal["info", "warning", "critical"] | None] = None,
    identity: Identity = None,
    last_event_id: LastEventId = None,
) -> Stream:
    """Security events as they are stored: events ``security`` with the fields of ``GET /api/security``."""
    want = _wants(["security"], name=category, severity=severity, station=identity)
    return _respond(svc, request, [(_live(svc).events, want)], last_event_id)


@get("/api/devices/stream", operation_id="streamDeviceReadings", tags=["live"], media_type=MEDIA_TYPE)
async def stream_readings(
    svc: Svc,
    request: Request[Any, Any, Any],
    device: Annotated[str | None, QueryParameter(description="only this device id (`{source}.{device}`)")] = None,
    source: Annotated[str | None, QueryParameter(description="only this source (evcc, go-e, …)")] = None,
    last_event_id: LastEventId = None,
) -> Stream:
    """Devices' normalised readings as the MQTT gateway stores them: events ``reading`` (the
    reading's fields, a full snapshot of the device, with its ``id``), ``id:`` = the TELEMETRY
    stream sequence."""
    want = _wants(["reading"], station=device, name=source)
    return _respond(svc, request, [(_live(svc).readings, want)], last_event_id)


@get("/api/telemetry/stream", operation_id="streamTelemetry", tags=["live"], media_type=MEDIA_TYPE)
async def stream_telemetry(svc: Svc, request: Request[Any, Any, Any]) -> Stream:
    """``GET /api/telemetry`` every 2 s as events ``telemetry`` (no ids: each is the whole state),
    computed once per 2 s for all clients."""
    hubs = _live(svc)

    async def ticks() -> AsyncIterator[bytes]:
        yield live.sse("connected", msgspec.json.encode({"every": live.TELEMETRY_EVERY_S}))
        while True:
            yield live.sse("telemetry", msgspec.json.encode(await hubs.telemetry()))
            await asyncio.sleep(live.TELEMETRY_EVERY_S)

    return _stream(svc, request, ticks())


ROUTES = [stream_messages, stream_events, stream_security, stream_readings, stream_telemetry]
