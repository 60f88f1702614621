"""What the API's handlers work with, handed to :func:`api.app.create_app` by bootstrap (or tests)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from litestar.di import NamedDependency
from nats.aio.client import Client as NATS

from api.auth import Auth
from evbus.clock import Clock, rfc3339, utc_now
from evbus.settings import Settings
from projections.runner import Projection
from schemas import subjects
from schemas.records import SecurityEvent, encode


@dataclass
class Services:
    nc: NATS
    projection: Projection
    auth: Auth
    settings: Settings
    clock: Clock = utc_now
    started: float = field(default_factory=time.monotonic)
    peak_connections: int = 0

    @property
    def js(self):  # type: ignore[no-untyped-def]  # nats-py's JetStreamContext
        return self.nc.jetstream()

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    async def security_event(self, category: str, remote: str | None, detail: str) -> None:
        event = SecurityEvent(
            category=category, remote_address=remote, gateway="api", detail=detail, at=rfc3339(self.clock())
        )
        await self.js.publish(
            subjects.security_event(category),
            encode(event),
            headers={subjects.H_MSG_ID: f"api:{secrets.token_hex(8)}"},
        )


Svc = NamedDependency[Services]
"""How a handler asks for the services: ``svc: Svc``."""
