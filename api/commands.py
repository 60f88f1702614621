"""Command routes: drive stations from REST (DESIGN §7). Every command goes through
``cmd.{station}.{action}`` to a command processor and is recorded in the stream.

Answers: ``200 {status, response, commandId, durationMs, …}`` with the station's own payload
(``status`` is the station's answer status, e.g. ``Accepted``, or ``Answered`` when its answer has
none); ``202`` with a command id for ``?wait=false``; ``404`` unknown station, ``409`` station not
connected, ``422`` a payload that is invalid for the station's protocol, ``502`` the station
answered CALLERROR, ``503`` no command processor, ``504`` no answer in time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from nats.js.errors import KeyNotFoundError

from api.monitoring import Limit, Offset, listing, page
from api.services import Services, Svc, json_response
from api.uploads import upload_location
from evbus.clock import rfc3339
from evbus.kv import current
from processors.commands import named
from processors.commands.client import CommandClient, NoProcessor, Pending
from projections import queries, views
from schemas import commands, ocpp_j, subjects
from schemas.commands import CommandReply

Wait = Annotated[bool, QueryParameter(description="false: answer 202 at once; GET /api/commands/{id} has the outcome")]
Timeout = Annotated[
    float | None,
    QueryParameter(
        name="timeout",
        gt=0,
        le=commands.MAX_TIMEOUT_S,
        description="seconds to wait for the station (EVBUS_CALL_TIMEOUT)",
    ),
]
ROUND_CALL_CONCURRENCY: Final = 100


class CommandAnswer(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """A command's outcome as the API shows it."""

    command_id: str
    identity: str
    action: str
    status: str  # the station's answer status, "Answered", or the command's state while it runs
    outcome: str | None = None
    command: str | None = None
    protocol: str | None = None
    response: msgspec.Raw = commands.NONE
    error_code: str | None = None
    error_description: str | None = None
    error_details: msgspec.Raw = commands.NONE
    detail: str | None = None
    duration_ms: float | None = None
    reservation_id: int | None = None


class RawCall(msgspec.Struct, forbid_unknown_fields=True):
    action: str
    payload: msgspec.Raw = commands.NONE


_raw_call = msgspec.json.Decoder(RawCall).decode
_status_of = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


def _client(svc: Services) -> CommandClient:
    if svc.commands is None:
        raise HTTPException(status_code=503, detail="commands are not available in this API process")
    return svc.commands


def _station_status(response: msgspec.Raw) -> str:
    try:
        found = _status_of(response).get("status")
    except msgspec.DecodeError:
        return "Answered"
    return found if isinstance(found, str) else "Answered"


def answer_of(reply: CommandReply, command: str | None = None, reservation_id: int | None = None) -> CommandAnswer:
    return CommandAnswer(
        command_id=reply.command_id,
        identity=reply.station,
        action=reply.action,
        status=_station_status(reply.response) if reply.outcome == "answered" else reply.outcome,
        outcome=reply.outcome,
        command=command,
        protocol=reply.protocol,
        response=reply.response,
        error_code=reply.error_code,
        error_description=reply.error_description,
        error_details=reply.error_details,
        detail=reply.detail,
        duration_ms=reply.duration_ms,
        reservation_id=reservation_id,
    )


_ERRORS: Final = {
    "error": (502, "the station answered CALLERROR"),
    "timeout": (504, "the station did not answer in time"),
    "offline": (409, "the station is not connected"),
    "invalid": (422, "the payload is not valid for the station's protocol"),
    "unavailable": (503, "the command could not be stored"),
}


async def _respond(svc: Services, reply: CommandReply, answer: CommandAnswer) -> Response[bytes]:
    if reply.outcome == "answered":
        return json_response(answer)
    status, error = _ERRORS[reply.outcome]
    if reply.outcome == "offline" and not await _known(svc, reply.station):
        status, error = 404, f"unknown station {reply.station!r}"
    elif reply.outcome == "error":
        error = f"the station answered CALLERROR {reply.error_code}"
    return json_response({"error": error, "detail": answer}, status)


async def _known(svc: Services, station: str) -> bool:
    """Ever seen (read model) or registered. Asked only once presence said "not connected"."""
    if await svc.projection.read(lambda cur: queries.station_exists(cur, station)):
        return True
    try:
        await (await svc.kv(subjects.BUCKET_REGISTRY)).get(subjects.kv_key(station))
    except KeyNotFoundError:
        return False
    return True


async def _dispatch(
    svc: Services,
    request: Request[Any, Any, Any],
    station: str,
    action: str,
    payload: bytes,
    *,
    wait: bool,
    timeout_s: float | None,
    command: str | None = None,
    reservation_id: int | None = None,
) -> Response[bytes]:
    who = svc.requested_by(request)
    if not wait:
        pending = _client(svc).start(station, action, payload, command=command, timeout_s=timeout_s, requested_by=who)
        body = CommandAnswer(
            command_id=pending.command_id,
            identity=station,
            action=action,
            command=command,
            status="requested",
            reservation_id=reservation_id,
        )
        return Response(
            _encode(body),
            status_code=202,
            media_type="application/json",
            headers={"Location": f"/api/commands/{pending.command_id}"},
        )
    try:
        reply = await _client(svc).send(
            station, action, payload, command=command, timeout_s=timeout_s, requested_by=who
        )
    except NoProcessor as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return await _respond(svc, reply, answer_of(reply, command, reservation_id))


# --- raw and named commands -------------------------------------------------------------------


@post("/api/stations/{identity:str}/call", operation_id="rawCall", tags=["commands"], status_code=200)
async def raw_call(
    svc: Svc,
    request: Request[Any, Any, Any],
    identity: FromPath[str],
    wait: FromQuery[bool] = True,
    timeout_s: Timeout = None,
) -> Response[bytes]:
    """Send ``{action, payload}`` as a CALL in the station's own protocol, exactly as given (member
    order kept). The payload is checked against that version's request schema and nothing else."""
    try:
        call = _raw_call(await request.body())
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"body must be {{action, payload}}: {exc}") from exc
    if not ocpp_j.ACTION.fullmatch(call.action):
        raise HTTPException(status_code=422, detail=f"{call.action[:80]!r} is not an OCPP action name")
    payload = bytes(call.payload) if call.payload else b"{}"
    return await _dispatch(svc, request, identity, call.action, payload, wait=wait, timeout_s=timeout_s)


@post(
    "/api/stations/{identity:str}/commands/{command:str}",
    operation_id="namedCommand",
    tags=["commands"],
    status_code=200,
)
async def named_command(
    svc: Svc,
    request: Request[Any, Any, Any],
    identity: FromPath[str],
    command: FromPath[str],
    wait: FromQuery[bool] = True,
    timeout_s: Timeout = None,
) -> Response[bytes]:
    """A version-neutral command (reset, remote-start, …; bodies in DESIGN §7 and docs/commands.md),
    mapped to the station's protocol."""
    if command not in named.COMMANDS:
        raise NotFoundException(f"unknown command {command!r}; known: {', '.join(named.COMMANDS)}")
    presence = await svc.presence(identity)
    if presence is None:
        if not await _known(svc, identity):
            raise NotFoundException(f"unknown station {identity!r}")
        raise HTTPException(status_code=409, detail=f"station {identity!r} is not connected")
    try:
        context = svc.command_context(upload_location(svc, request, identity))
        call = await named.build(command, await request.body(), presence.protocol, context)  # type: ignore[arg-type]
    except named.CommandInputError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    payload = _encode(call.payload)
    return await _dispatch(
        svc,
        request,
        identity,
        call.action,
        payload,
        wait=wait,
        timeout_s=timeout_s,
        command=command,
        reservation_id=call.reservation_id,
    )


# --- status round call ------------------------------------------------------------------------


class RoundCall(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    identities: list[str] | None = None  # default: every connected station


class RoundCallAnswer(msgspec.Struct, kw_only=True, rename="camel"):
    stations: int
    accepted: int
    results: list[CommandAnswer]


@post("/api/stations/status-round-call", operation_id="statusRoundCall", tags=["commands"], status_code=200)
async def status_round_call(svc: Svc, request: Request[Any, Any, Any], timeout_s: Timeout = None) -> Response[bytes]:
    """Ask every connected station (or ``{identities: [...]}``) for a StatusNotification of each
    connector (TriggerMessage), at most 100 at a time; one result per station."""
    body = await request.body()
    try:
        wanted = msgspec.json.decode(body, type=RoundCall) if body.strip() else RoundCall()
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"invalid body: {exc}") from exc
    kv = await svc.kv(subjects.BUCKET_STATIONS)
    if wanted.identities is None:
        stations = sorted(subjects.from_kv_key(k) for k in await current(kv))
    else:
        stations = list(dict.fromkeys(wanted.identities))
    who = svc.requested_by(request)
    gate = asyncio.Semaphore(ROUND_CALL_CONCURRENCY)
    context = svc.command_context()
    trigger = b'{"message": "StatusNotification"}'

    async def one(station: str) -> CommandAnswer:
        async with gate:
            presence = await svc.presence(station)
            if presence is None:
                return CommandAnswer(command_id="", identity=station, action="TriggerMessage", status="offline")
            call = await named.build("trigger-message", trigger, presence.protocol, context)  # type: ignore[arg-type]
            try:
                reply = await _client(svc).send(
                    station,
                    call.action,
                    _encode(call.payload),
                    command="trigger-message",
                    timeout_s=timeout_s,
                    requested_by=who,
                )
            except NoProcessor as exc:
                return CommandAnswer(
                    command_id="", identity=station, action=call.action, status="unavailable", detail=str(exc)
                )
            return answer_of(reply, "trigger-message")

    results = await asyncio.gather(*(one(s) for s in stations))
    accepted = sum(1 for r in results if r.status == "Accepted")
    return json_response(RoundCallAnswer(stations=len(results), accepted=accepted, results=list(results)))


# --- disconnect -------------------------------------------------------------------------------


class Disconnect(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: str = ""


@post("/api/connections/{identity:str}/disconnect", operation_id="disconnect", tags=["commands"], status_code=200)
async def disconnect(svc: Svc, request: Request[Any, Any, Any], identity: FromPath[str]) -> Response[bytes]:
    """Close the station's websocket (it may reconnect at once, as stations do); recorded as
    ``conn.disconnected`` with the reason. ``{reason?}``."""
    body = await request.body()
    try:
        wanted = msgspec.json.decode(body, type=Disconnect) if body.strip() else Disconnect()
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"invalid body: {exc}") from exc
    presence = await svc.presence(identity)
    if presence is None:
        if not await _known(svc, identity):
            raise NotFoundException(f"unknown station {identity!r}")
        raise HTTPException(status_code=409, detail=f"station {identity!r} is not connected")
    reason = f"{wanted.reason[:80]} ({svc.requested_by(request)})" if wanted.reason else svc.requested_by(request)
    try:
        msg = await svc.nc.request(
            subjects.gateway_control(presence.gateway, "disconnect"),
            _encode({"station": identity, "reason": reason}),
            timeout=5,
        )
    except Exception as exc:
        raise HTTPException(status_code=503, detail=f"gateway {presence.gateway!r} did not answer: {exc!r}") from exc
    closed = msgspec.json.decode(msg.data).get("disconnected", False)
    if not closed:
        raise HTTPException(status_code=409, detail=f"station {identity!r} is not connected")
    return json_response({"status": "disconnected", "identity": identity, "gateway": presence.gateway})


# --- command history --------------------------------------------------------------------------


_LIFECYCLE: Final = {"answered": "answered", "timeout": "timed_out"}  # every other outcome: failed


def _pending_view(p: Pending) -> views.Command:
    """A command this process sent with ``wait=false``, in the read model's shape."""
    reply = p.reply
    status = _LIFECYCLE.get(reply.outcome, "failed") if reply else ("failed" if p.error else "requested")
    return views.Command(
        command_id=p.command_id,
        identity=p.station,
        action=p.action,
        command=p.command,
        status=status,
        outcome=reply.outcome if reply else ("unavailable" if p.error else None),
        requested_at=rfc3339(datetime.fromtimestamp(p.started, UTC)),
        sent_at=None,
        finished_at=None,
        request=None,
        response=reply.response if reply and reply.response else None,
        error_code=reply.error_code if reply else None,
        error_description=reply.error_description if reply else None,
        error_details=reply.error_details if reply and reply.error_details else None,
        duration_ms=reply.duration_ms if reply else None,
        requested_by=None,
        detail=(reply.detail if reply else p.error),
    )


@get("/api/commands/{command_id:str}", operation_id="getCommand", tags=["commands"])
async def get_command(svc: Svc, command_id: FromPath[str]) -> Any:
    """One command: its lifecycle from the stream (requested, sent, answered/failed/timed_out), the
    request and the station's answer. A command sent with ``wait=false`` a moment ago is shown from
    this process's memory until the read model has it."""
    found = await svc.projection.read(lambda cur: queries.command(cur, command_id))
    if found is not None and (found.status not in ("requested", "sent") or command_id not in _client(svc).background):
        return found
    pending = _client(svc).background.get(command_id)
    if pending is not None:
        return _pending_view(pending)
    if found is not None:
        return found
    raise NotFoundException(f"unknown command {command_id!r}")


@get("/api/commands", operation_id="listCommands", tags=["commands"])
async def list_commands(
    svc: Svc,
    identity: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.Command]]:
    """Commands, newest first."""
    f = queries.CommandFilter(identity=identity, status=status, action=action)
    rows, total = await svc.projection.read(lambda cur: queries.commands(cur, f, page(limit, offset)))
    return listing(rows, total)


ROUTES = [raw_call, named_command, status_round_call, disconnect, get_command, list_commands]
