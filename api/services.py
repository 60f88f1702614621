"""What the API's handlers work with, handed to :func:`api.app.create_app` by bootstrap (or tests)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from api.auth import ADMIN, COOKIE, Auth
from api.live import Live
from evbus.clock import Clock, rfc3339, utc_now
from evbus.counters import KvCounter
from evbus.profiles import ProfileStore
from evbus.settings import Settings
from evbus.throttle import Throttles
from evbus.tokens import TokenStore
from gateways.ocpp.limits import MAX_ADDRESSES, address_of
from processors.commands import named
from processors.commands.client import CommandClient
from projections.runner import Projection
from schemas import subjects
from schemas.charging import ChargingProfile
from schemas.records import Presence, SecurityEvent, encode

_presence = msgspec.json.Decoder(Presence).decode
_encode_json = msgspec.json.Encoder().encode


def json_response(body: Any, status: int = 200) -> Response[bytes]:
    """``body`` (a msgspec struct or plain data) as JSON with ``status``: for handlers whose
    status depends on the outcome."""
    return Response(_encode_json(body), status_code=status, media_type="application/json")


@dataclass(frozen=True, slots=True)
class Counters:
    """KV ``csms`` counters of the ids evbus allocates when it sends CALLs."""

    reservations: KvCounter
    requests: KvCounter

    @classmethod
    async def open(cls, js: JetStreamContext) -> Counters:
        kv = await js.key_value(subjects.BUCKET_CSMS)
        return cls(KvCounter(kv, subjects.COUNTER_RESERVATIONS), KvCounter(kv, subjects.COUNTER_REQUESTS))


@dataclass
class Services:
    nc: NATS
    projection: Projection
    auth: Auth
    settings: Settings
    clock: Clock = utc_now
    started: float = field(default_factory=time.monotonic)
    peak_connections: int = 0
    tokens: TokenStore | None = None  # KV tokens (bootstrap.api opens it; routes answer 503 without)
    profiles: ProfileStore | None = None  # KV charging_profiles
    commands: CommandClient | None = None  # cmd.{station}.{action} requests
    counters: Counters | None = None  # ids the CSMS allocates for the CALLs it sends
    live: Live | None = None  # the SSE routes' stream readers (bootstrap.api starts them)
    _buckets: dict[str, KeyValue] = field(default_factory=dict, repr=False)
    # one security event per category and address per minute (failed logins, refused uploads)
    _throttles: Throttles[tuple[str, str]] = field(default_factory=lambda: Throttles(MAX_ADDRESSES), repr=False)

    @property
    def js(self):  # type: ignore[no-untyped-def]  # nats-py's JetStreamContext
        return self.nc.jetstream()

    async def kv(self, bucket: str) -> KeyValue:
        """The KV bucket's handle, looked up once (``js.key_value`` asks the server every time)."""
        found = self._buckets.get(bucket)
        if found is None:
            found = self._buckets[bucket] = await self.nc.jetstream().key_value(bucket)
        return found

    async def presence(self, station: str) -> Presence | None:
        """Which gateway holds the station's socket (KV ``stations``); None when none does."""
        kv = await self.kv(subjects.BUCKET_STATIONS)
        try:
            entry = await kv.get(subjects.kv_key(station))
        except KeyNotFoundError:
            return None
        try:
            return _presence(entry.value) if entry.value else None
        except msgspec.DecodeError:
            return None

    def requested_by(self, request: Request[Any, Any, Any]) -> str:
        """Who is asking: the session's user, or the admin token's holder."""
        session = self.auth.session(request.cookies.get(COOKIE))
        return session.user if session else ADMIN

    def command_context(self, upload_location: Callable[[], str] | None = None) -> named.Context:
        """What mapping a named command may need: ids to allocate, stored profiles, the time, and
        the station's upload URL (:func:`api.uploads.upload_location`; without it a get-diagnostics
        needs a ``location``)."""
        assert self.counters is not None
        counters, profiles = self.counters, self.profiles

        async def profile(ref: int | str) -> ChargingProfile | None:
            return profiles.find(ref) if profiles is not None else None

        return named.Context(
            next_reservation_id=counters.reservations.next,
            next_request_id=counters.requests.next,
            profile=profile,
            now=self.now,
            upload_location=upload_location,
        )

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    async def security_event(
        self, category: str, remote: str | None, detail: str, station: str | None = None, *, throttled: bool = False
    ) -> None:
        """Record ``events.security.{category}``. ``throttled`` (what anyone on the network can
        cause: failed logins, refused upload tickets): from one address at most one per category a
        minute, the next one counting those held back. Operators' changes are always recorded."""
        if throttled and remote is not None:
            held = self._throttles.allow((category, address_of(remote)), time.monotonic())
            if held is None:
                return
            if held:
                detail = f"{detail} ({held} more from {address_of(remote)} since the last event)"
        event = SecurityEvent(
            category=category,
            severity="warning",
            station=station,
            remote_address=remote,
            gateway="api",
            detail=detail,
            at=rfc3339(self.clock()),
        )
        await self.js.publish(
            subjects.security_event(category),
            encode(event),
            headers={subjects.H_MSG_ID: f"api:{secrets.token_hex(8)}"},
        )


def remote_address(request: Request[Any, Any, Any]) -> str | None:
    """``host:port`` of the request's peer, as the gateway writes ``remoteAddress``."""
    client = request.client
    return f"{client.host}:{client.port}" if client else None


Svc = NamedDependency[Services]
"""How a handler asks for the services: ``svc: Svc``."""
