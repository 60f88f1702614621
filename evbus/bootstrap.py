"""Wiring: one place that connects NATS, declares the streams and starts the roles.

``evbus up`` runs every role in one process; ``evbus gateway`` / ``evbus processors`` run one each
(compose.yaml). Tests call the same context managers, so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client as NATS

from api import uploads
from api.app import create_app, serve
from api.auth import Auth, admin_token_hash
from api.live import Live
from api.monitoring import telemetry_now
from api.services import Counters, Services
from evbus.embedded_nats import embedded_nats, ensure_port_free
from evbus.kv import KvMirror
from evbus.profiles import ProfileStore
from evbus.settings import Settings, SettingsError
from evbus.tokens import TokenStore
from gateways.mqtt.gateway import MqttGateway, broker_url
from gateways.mqtt.generic import MappingError
from gateways.ocpp.server import OcppGateway
from processors.commands.app import CommandProcessor
from processors.commands.client import CommandClient
from processors.csms.app import CsmsProcessor
from projections.runner import Projection
from schemas import streams, subjects
from schemas.records import StationRecord, UserRecord

log = logging.getLogger(__name__)

ROLES = ("gateway", "processors", "api", "mqtt-gateway")
PROJECTION_FILE = "projections.duckdb"


@dataclass(frozen=True, slots=True)
class Bus:
    nc: NATS
    url: str
    mqtt_port: int | None = None  # the embedded server's MQTT listener, when this process started one


@contextlib.asynccontextmanager
async def bus(settings: Settings, *, embedded: bool = True) -> AsyncIterator[Bus]:
    """Connect to EVBUS_NATS_URL, or start the embedded nats-server; declare the streams."""
    async with contextlib.AsyncExitStack() as stack:
        mqtt_port = None
        if settings.nats_url:
            url = settings.nats_url
        elif embedded:
            server = await stack.enter_async_context(
                embedded_nats(settings.data_dir, settings.nats_host, settings.nats_port, settings.mqtt_port)
            )
            url, mqtt_port = server.url, server.mqtt_port
        else:
            url = f"nats://127.0.0.1:{settings.nats_port}"
        nc = await connect(url)
        stack.push_async_callback(_drain, nc)
        await streams.declare(
            nc.jetstream(),
            streams.Retention(
                ocpp_days=settings.retention_days,
                telemetry_days=settings.retention_days,
                events_days=settings.events_retention_days,
            ),
        )
        yield Bus(nc, url, mqtt_port)


async def _drain(nc: NATS) -> None:
    """Drain on the way out, unless the connection is closed already (nothing left to drain)."""
    if not nc.is_closed:
        await nc.drain()


def without_credentials(url: str) -> str:
    """``url`` for a log line: ``nats://user:secret@host:4222`` becomes ``nats://host:4222``."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(url: str) -> NATS:
    """A connection that keeps reconnecting (a user and password come in ``url``)."""

    async def error_cb(exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    return await nats.connect(
        url,
        name="evbus",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=error_cb,
        connect_timeout=5,
    )


@contextlib.asynccontextmanager
async def gateway(b: Bus, settings: Settings) -> AsyncIterator[OcppGateway]:
    js = b.nc.jetstream()
    registry = await KvMirror.open(js, subjects.BUCKET_REGISTRY, StationRecord)
    gw = OcppGateway(b.nc, settings, registry=registry, presence=await js.key_value(subjects.BUCKET_STATIONS))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()
        await registry.stop()


@contextlib.asynccontextmanager
async def mqtt_gateway(b: Bus, settings: Settings) -> AsyncIterator[MqttGateway]:
    """The MQTT gateway, subscribed to EVBUS_MQTT_URL or the embedded server's MQTT listener."""
    try:
        gw = MqttGateway(b.nc, settings, url=broker_url(settings, b.mqtt_port))
    except MappingError as exc:
        raise SettingsError(f"EVBUS_MQTT_MAPPINGS: {exc}") from exc
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@contextlib.asynccontextmanager
async def processors(b: Bus, settings: Settings) -> AsyncIterator[CsmsProcessor]:
    """The CSMS processor (answers stations) and a command processor (sends them operators' CALLs)."""
    csms = CsmsProcessor(b.nc, b.url, settings)
    commanding = CommandProcessor(b.nc, b.url, settings)
    await csms.start()
    try:
        await commanding.start()
        try:
            yield csms
        finally:
            await commanding.stop()
    finally:
        await csms.stop()


@dataclass(frozen=True, slots=True)
class Api:
    services: Services
    port: int
    generated_token: str | None


@contextlib.asynccontextmanager
async def api(b: Bus, settings: Settings) -> AsyncIterator[Api]:
    """The projection (this process owns its DuckDB file) and the REST API serving it."""
    js = b.nc.jetstream()
    token_hash, generated = await asyncio.to_thread(admin_token_hash, settings.api_token, settings.data_dir)
    await asyncio.to_thread(uploads.tickets, settings.data_dir)  # the upload key, read before any request needs it
    async with contextlib.AsyncExitStack() as stack:
        users = await KvMirror.open(js, subjects.BUCKET_USERS, UserRecord)
        stack.push_async_callback(users.stop)
        tokens = await TokenStore.open(js)
        stack.push_async_callback(tokens.stop)
        profiles = await ProfileStore.open(js)
        stack.push_async_callback(profiles.stop)
        projection = await stack.enter_async_context(Projection(b.nc, settings.data_dir / PROJECTION_FILE))
        auth = Auth(token_hash, users, open_access=settings.api_open, session_ttl_s=settings.api_session_hours * 3600)
        commands = CommandClient(b.nc, settings.call_timeout)
        stack.push_async_callback(commands.stop)
        services = Services(
            nc=b.nc,
            projection=projection,
            auth=auth,
            settings=settings,
            tokens=tokens,
            profiles=profiles,
            commands=commands,
            counters=await Counters.open(js),
        )
        services.live = Live(b.nc, lambda: telemetry_now(services))
        await services.live.start()
        stack.push_async_callback(services.live.stop)
        port = await stack.enter_async_context(serve(create_app(services), settings.api_host, settings.api_port))
        yield Api(services, port, generated)


@dataclass(frozen=True, slots=True)
class Running:
    """What :func:`stack` started: the bus, and the gateway's and API's ports where they run."""

    bus: Bus
    ocpp_url: str | None
    api_url: str | None


@contextlib.asynccontextmanager
async def stack(settings: Settings, roles: Collection[str] = ROLES, *, embedded: bool = True) -> AsyncIterator[Running]:
    """Start ``roles`` on one bus and say where they listen; stop them on exit."""
    if "gateway" in roles and settings.ocpp_port != 0:
        ensure_port_free(settings.ocpp_host, settings.ocpp_port, "OCPP websocket listener", "EVBUS_OCPP_PORT")
    if "api" in roles and settings.api_port != 0:
        ensure_port_free(settings.api_host, settings.api_port, "REST API", "EVBUS_API_PORT")
    async with contextlib.AsyncExitStack() as exits:
        b = await exits.enter_async_context(bus(settings, embedded=embedded))
        ocpp_url = api_url = None
        if "processors" in roles:
            await exits.enter_async_context(processors(b, settings))
        if "gateway" in roles:
            gw = await exits.enter_async_context(gateway(b, settings))
            host = "127.0.0.1" if settings.ocpp_host in ("0.0.0.0", "") else settings.ocpp_host
            ocpp_url = f"ws://{host}:{gw.port}/ocpp"
            print(f"evbus is up: connect charge points to {ocpp_url}/<stationId>", flush=True)
            if gw.tls_port is not None:
                print(f"  with TLS (security profiles 2, 3): wss://{host}:{gw.tls_port}/ocpp/<stationId>", flush=True)
        if "mqtt-gateway" in roles:
            mqtt = await exits.enter_async_context(mqtt_gateway(b, settings))
            print(f"MQTT gateway: subscribed to {mqtt.broker.address} ({', '.join(mqtt.topics)})", flush=True)
        if "api" in roles:
            served = await exits.enter_async_context(api(b, settings))
            api_url = f"http://{settings.api_host}:{served.port}"
            print(f"API and OpenAPI viewer: {api_url}/schema", flush=True)
            if served.generated_token:
                print(
                    f"API admin token (shown once, stored hashed in {settings.data_dir}): {served.generated_token}",
                    flush=True,
                )
            elif settings.api_open:
                print("API is OPEN: EVBUS_API_OPEN=true, no token needed", flush=True)
        print(f"NATS: {without_credentials(b.url)} (streams OCPP, EVENTS, TELEMETRY). Ctrl-C stops.", flush=True)
        yield Running(b, ocpp_url, api_url)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run(settings: Settings, roles: Collection[str] = ROLES, *, embedded: bool = True) -> None:
    """Run ``roles`` until SIGINT/SIGTERM."""
    stop = stop_on_signals()
    async with stack(settings, roles, embedded=embedded):
        await stop.wait()
        log.info("stopping")
