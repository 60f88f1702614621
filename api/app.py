"""The Litestar app: routes, auth guard, JSON errors, health, Prometheus metrics, and its server.

Every route needs the admin token (``Authorization: Bearer``) or a login session cookie, except
login/session/logout and ``/healthz``; ``EVBUS_API_OPEN=true`` lifts that. Errors are always JSON
``{"error": ..., "detail": ...}``, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import msgspec
import nats.errors
import nats.js.errors
import uvicorn
from litestar import Litestar, MediaType, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from api import commands, dashboard, devices, history, live, monitoring, mqtt, operations, sse, stations, uploads
from api import state as csms_state
from api.auth import COOKIE, bearer
from api.services import Services, Svc
from projections import queries

log = logging.getLogger(__name__)


# --- auth guard -------------------------------------------------------------------------------


async def require_auth(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if handler.opt.get("exclude_from_auth"):
        return
    svc: Services = connection.app.state.services
    if svc.auth.open_access:
        return
    if svc.auth.session(connection.cookies.get(COOKIE)) is not None:
        return
    token = bearer(connection.headers.get("Authorization"))
    if token is not None and await svc.auth.check_token(token):
        return
    raise NotAuthorizedException("Unauthorized")


# --- errors -----------------------------------------------------------------------------------


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    detail: Any = None


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    if isinstance(exc, ValidationException):
        problems = exc.extra if isinstance(exc.extra, list) else []
        keys = [p.get("key") for p in problems if isinstance(p, dict) and p.get("key")]
        where = {p.get("source") for p in problems if isinstance(p, dict)} - {None}
        what = "body" if where == {"body"} else "parameter"
        if not keys:  # e.g. a missing parameter: Litestar's own message names it
            return Response(ErrorBody(exc.detail or "invalid request", problems or None), status_code=400)
        return Response(ErrorBody(f"invalid {what} {', '.join(repr(k) for k in keys)}", problems), status_code=400)
    detail = exc.extra if exc.extra else None
    return Response(ErrorBody(exc.detail, detail), status_code=exc.status_code, headers=exc.headers)


# NATS not there (not connected, reconnecting, draining, no JetStream answering in time): the
# client's request was fine, so 503, not a 500 with a logged stack trace
BUS_DOWN: Final = (
    nats.errors.TimeoutError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
)


def bus_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """NATS did not answer (not connected, reconnecting, a JetStream or KV request timed out): the
    request was fine, the bus is not there right now."""
    log.warning("%s %s: NATS unavailable: %r", request.method, request.url.path, exc)
    return Response(
        ErrorBody("the message bus (NATS) is not reachable right now; try again"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return Response(ErrorBody("Internal server error"), status_code=HTTP_500_INTERNAL_SERVER_ERROR)


# --- health and metrics -----------------------------------------------------------------------


class Health(msgspec.Struct):
    status: str
    nats: bool
    projection: dict[str, int]


@get("/healthz", operation_id="health", tags=["system"], exclude_from_auth=True)
async def healthz(svc: Svc) -> Response[Health]:
    ok = svc.nc.is_connected
    body = Health(status="ok" if ok else "degraded", nats=ok, projection=dict(svc.projection.positions))
    return Response(body, status_code=200 if ok else 503)


class ReadModelCollector(Collector):
    """Prometheus metric families computed from the read model at scrape time."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


@get("/metrics", operation_id="metrics", tags=["system"], media_type="text/plain; version=0.0.4")
async def metrics(svc: Svc) -> bytes:
    def read(cur: Any) -> tuple[int, list[Any], list[Any]]:
        return queries.online(cur), queries.frame_counts(cur), queries.latency_histograms(cur)

    online, frames, latencies = await svc.projection.read(read)
    connections = GaugeMetricFamily("evbus_connections", "stations with an open connection")
    connections.add_metric([], online)
    frame_total = CounterMetricFamily(
        "evbus_frames", "OCPP frames stored, by direction, action and type", labels=["direction", "action", "type"]
    )
    for direction, action, kind, count in frames:
        frame_total.add_metric([direction, action, kind], count)
    latency = HistogramMetricFamily(
        "evbus_call_latency_ms", "time from a CALL to its answer, ms", labels=["action", "direction"]
    )
    for action, direction, buckets, count, total in latencies:
        pairs = [(str(b), float(c)) for b, c in zip(queries.LATENCY_BUCKETS_MS, buckets, strict=True)]
        latency.add_metric([action, direction], [*pairs, ("+Inf", float(count))], total)
    lag = GaugeMetricFamily(
        "evbus_projection_lag",
        "stream sequences stored but not yet projected (TELEMETRY: up to its last reading)",
        labels=["stream"],
    )
    consumer_lag = GaugeMetricFamily(
        "evbus_consumer_pending", "messages a durable consumer has not processed yet", labels=["stream", "consumer"]
    )
    for state in await operations.stream_states(svc):
        if state.projection_lag is not None:
            lag.add_metric([state.name], state.projection_lag)
        for c in state.consumers:
            consumer_lag.add_metric([state.name, c.name], c.num_pending + c.num_ack_pending)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadModelCollector([connections, frame_total, latency, lag, consumer_lag]))
    return generate_latest(registry)


# --- the app ----------------------------------------------------------------------------------


SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",  # a JSON answer is never run as a script or page
    "X-Frame-Options": "DENY",  # no page of ours inside someone else's frame (clickjacking)
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # answers carry station data and, once, generated secrets
}


def security_headers(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every answer, errors and 401s included. No
    CORS headers are ever sent: pages of other origins cannot read the API."""
    extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def create_app(services: Services) -> Litestar:
    app = Litestar(
        route_handlers=[
            *monitoring.ROUTES,
            *operations.ROUTES,
            *devices.ROUTES,
            *commands.ROUTES,
            *history.ROUTES,
            *csms_state.ROUTES,
            *stations.ROUTES,
            *uploads.ROUTES,
            *mqtt.ROUTES,
            *sse.ROUTES,
            *dashboard.ROUTES,
            healthz,
            metrics,
        ],
        dependencies={"svc": Provide(lambda: services, sync_to_thread=False)},
        guards=[require_auth],
        middleware=[security_headers],
        exception_handlers={
            HTTPException: http_error,
            **dict.fromkeys(BUS_DOWN, bus_unavailable),
            HTTP_500_INTERNAL_SERVER_ERROR: internal_error,
        },
        request_max_body_size=services.settings.api_max_body_bytes,  # larger: 413, before the body is read
        openapi_config=OpenAPIConfig(
            title="evbus",
            version="0.1.0",
            description="REST API of evbus: read models of the OCPP stream, commands, replay.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
        ),
        debug=False,
        logging_config=None,  # evbus configures logging once (cli.py); Litestar's would replace its format
    )
    app.state.services = services
    return app


class _Server(uvicorn.Server):
    """uvicorn inside evbus's own event loop: evbus, not uvicorn, owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def expose_transport(app: ASGIApp) -> ASGIApp:
    """Put each request's socket transport into its scope (extension ``evbus.transport``), so the
    SSE fan-out can write a live event to a caught-up client's socket without a task wake-up and
    an ASGI send per client (api/live.py, docs/adr/0011-sse.md). uvicorn's ``send`` is a method of
    the request's cycle, which holds the transport; with any other server nothing is added and the
    streams take the ASGI path."""

    async def with_transport(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if callable(getattr(transport, "get_write_buffer_size", None)):  # uvloop's is no asyncio.Transport
                extensions: dict[str, Any] = dict(scope.get("extensions") or {})
                extensions[live.TRANSPORT_KEY] = transport
                scope["extensions"] = extensions  # type: ignore[typeddict-item]
        await app(scope, receive, send)

    return with_transport


@contextlib.asynccontextmanager
async def serve(app: Litestar, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` until the block ends; yields the bound port (``port=0`` picks a free one)."""
    config = uvicorn.Config(
        expose_transport(app),
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )  # log_config=None: keep evbus's logging format
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="api-server")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the bind error
                raise RuntimeError("API server stopped during start-up")
            await asyncio.sleep(0.01)
        sockets = [s for srv in server.servers for s in srv.sockets]
        yield sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["MediaType", "create_app", "serve"]
