"""Monitoring routes (DESIGN §7, ocpp-ws-board shapes): login, overview, connections, messages,
telemetry, security events."""

from __future__ import annotations

import resource
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import ADMIN, COOKIE
from api.services import Services, Svc, remote_address
from evbus.clock import rfc3339
from projections import queries, views
from schemas import subjects

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="rows per page")]
Offset = Annotated[int, QueryParameter(ge=0, le=2**63 - 1, description="rows to skip")]  # DuckDB: BIGINT


def listing(rows: list[Any], total: int) -> Response[list[Any]]:
    """A list endpoint's answer: a JSON array, the total count in ``X-Total-Count``."""
    return Response(rows, headers={"X-Total-Count": str(total)})


def page(limit: int, offset: int) -> queries.Page:
    return queries.Page(limit=limit, offset=offset)


# --- auth -------------------------------------------------------------------------------------


class Login(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: str | None = None
    username: str | None = None
    password: str | None = None


class User(msgspec.Struct):
    name: str


class LoginAnswer(msgspec.Struct, rename="camel"):
    session_id: str
    user: User
    expires_at: str


class SessionAnswer(msgspec.Struct, rename="camel"):
    authenticated: bool
    user: User | None = None
    expires_at: str | None = None


class Done(msgspec.Struct):
    success: bool = True
    message: str | None = None


def _iso(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC), "seconds")


@post("/api/auth/login", operation_id="login", status_code=200, tags=["auth"], exclude_from_auth=True)
async def login(data: JSONBody[Login], svc: Svc, request: Request[Any, Any, Any]) -> Response[LoginAnswer]:
    auth = svc.auth
    user: str | None = None
    if data.token is not None:
        user = ADMIN if await auth.check_token(data.token) else None
    elif data.username is not None and data.password is not None:
        user = data.username if await auth.check_user(data.username, data.password) else None
    else:
        raise HTTPException(status_code=400, detail="give {token} or {username, password}")
    if user is None:
        who = f"user {data.username!r}" if data.username is not None else "token"
        await svc.security_event(
            "api_login_failed", remote_address(request), f"API login failed ({who})", throttled=True
        )
        raise NotAuthorizedException("invalid credentials")
    session_id, session = auth.start_session(user)
    answer = LoginAnswer(session_id=session_id, user=User(user), expires_at=_iso(session.expires_at))
    response = Response(answer)
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        max_age=int(auth.session_ttl_s),
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


@get("/api/auth/session", operation_id="session", tags=["auth"], exclude_from_auth=True)
async def session(svc: Svc, request: Request[Any, Any, Any]) -> SessionAnswer:
    current = svc.auth.session(request.cookies.get(COOKIE))
    if current is None:
        return SessionAnswer(authenticated=False)
    return SessionAnswer(authenticated=True, user=User(current.user), expires_at=_iso(current.expires_at))


@post("/api/auth/logout", operation_id="logout", status_code=200, tags=["auth"], exclude_from_auth=True)
async def logout(svc: Svc, request: Request[Any, Any, Any]) -> Response[Done]:
    svc.auth.end_session(request.cookies.get(COOKIE))
    response = Response(Done())
    response.delete_cookie(COOKIE, path="/")
    return response


# --- overview and telemetry -------------------------------------------------------------------


@get("/api/overview", operation_id="overview", tags=["monitoring"])
async def overview(svc: Svc) -> views.Overview:
    now = svc.now()

    def run(cur: Any) -> tuple[queries.Totals, list[views.Message]]:
        recent, _ = queries.messages(cur, queries.MessageFilter(), queries.Page(limit=10))
        return queries.totals(cur, now), recent

    totals, recent = await svc.projection.read(run)
    _saw(svc, totals)
    return views.Overview(
        connected_clients=totals.online,
        total_connections=totals.connections,
        messages_per_second=totals.recent_rate,
        avg_latency_ms=totals.avg_latency_ms,
        error_rate=totals.error_rate,
        uptime_seconds=svc.uptime(),
        total_messages=totals.messages,
        recent_messages=recent,
        security_event_count=totals.security_events,
        error_count=totals.errors,
        system_event_count=totals.system_events,
    )


@get("/api/telemetry", operation_id="telemetry", tags=["monitoring"])
async def telemetry(svc: Svc) -> views.Telemetry:
    return await telemetry_now(svc)


async def telemetry_now(svc: Services) -> views.Telemetry:
    """What ``/api/telemetry`` and its stream answer: this process and the traffic of the last minute."""
    now = svc.now()
    totals = _saw(svc, await svc.projection.read(lambda cur: queries.totals(cur, now)))
    return views.Telemetry(
        messages_per_second=totals.recent_rate,
        avg_latency_ms=totals.avg_latency_ms,
        error_rate=totals.error_rate,
        connection_count=totals.online,
        peak_connections=svc.peak_connections,
        uptime_seconds=svc.uptime(),
        total_messages=totals.messages,
        memory_usage=views.MemoryUsage(rss=_rss(), max_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
    )


def _saw(svc: Services, totals: queries.Totals) -> queries.Totals:
    """Every read of the totals feeds the peak of connected stations since this process started."""
    svc.peak_connections = max(svc.peak_connections, totals.online)
    return totals


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- connections ------------------------------------------------------------------------------


@get("/api/connections", operation_id="listConnections", tags=["monitoring"])
async def list_connections(
    svc: Svc,
    status: FromQuery[Literal["online", "offline", "all"]] = "all",
    protocol: FromQuery[str | None] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.Connection]]:
    rows, total = await svc.projection.read(
        lambda cur: queries.connections(cur, status=status, protocol=protocol, page=page(limit, offset))
    )
    return listing(rows, total)


@get("/api/connections/{identity:str}", operation_id="getConnection", tags=["monitoring"])
async def get_connection(svc: Svc, identity: FromPath[str]) -> views.ConnectionDetail:
    found = await svc.projection.read(lambda cur: queries.connection(cur, identity))
    if found is None:
        raise NotFoundException(f"no connection of station {identity!r}")
    return found


@delete("/api/connections/{identity:str}", operation_id="forgetConnections", tags=["monitoring"], status_code=200)
async def forget_connections(svc: Svc, identity: FromPath[str]) -> Done:
    """Remove the station's closed connections from the history (an `events.admin` event, so a
    rebuild forgets the same ones). An open connection stays."""
    if not await svc.projection.read(lambda cur: queries.station_exists(cur, identity)):
        raise NotFoundException(f"unknown station {identity!r}")
    ack = await svc.js.publish(
        subjects.admin_event(identity, "forget_connections"),
        msgspec.json.encode({"station": identity, "at": rfc3339(svc.now())}),
        headers={subjects.H_STATION: identity},
    )
    await svc.projection.wait_for({subjects.STREAM_EVENTS: ack.seq})
    return Done(message="connection history removed")


# --- messages ---------------------------------------------------------------------------------


@get("/api/messages", operation_id="listMessages", tags=["monitoring"])
async def list_messages(
    svc: Svc,
    identity: FromQuery[str | None] = None,
    method: FromQuery[str | None] = None,
    direction: FromQuery[Literal["IN", "OUT"] | None] = None,
    type: FromQuery[Literal["CALL", "CALLRESULT", "CALLERROR", "CALLRESULTERROR", "SEND", "INVALID"] | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    order: FromQuery[Literal["asc", "desc"]] = "desc",
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.Message]]:
    """Frames, newest first (``order=asc`` for oldest first), with the CALLs' response time."""
    f = queries.MessageFilter(
        identity=identity, method=method, direction=direction, type=type, since=since, until=until
    )
    rows, total = await svc.projection.read(lambda cur: queries.messages(cur, f, page(limit, offset), order))
    return listing(rows, total)


# --- security ---------------------------------------------------------------------------------


@get("/api/security", operation_id="listSecurityEvents", tags=["monitoring"])
async def list_security(
    svc: Svc,
    category: FromQuery[str | None] = None,
    severity: FromQuery[Literal["info", "warning", "critical"] | None] = None,
    identity: FromQuery[str | None] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[list[views.SecurityEvent]]:
    rows, total = await svc.projection.read(
        lambda cur: queries.security_events(cur, category, severity, identity, page(limit, offset))
    )
    return listing(rows, total)


ROUTES = [
    login,
    session,
    logout,
    overview,
    telemetry,
    list_connections,
    get_connection,
    forget_connections,
    list_messages,
    list_security,
]
