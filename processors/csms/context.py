"""What a CSMS handler gets besides the payload: who called, when, and the state it may consult."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from evbus.clock import Clock, rfc3339
from evbus.settings import Settings
from schemas.ocpp_j import Protocol as OcppProtocol
from schemas.records import TokenRecord


class Tokens(Protocol):
    """The token store (KV ``tokens``), as the handlers see it."""

    def get(self, id_tag: str) -> TokenRecord | None: ...


class TransactionIds(Protocol):
    """1.6 transaction ids: allocated once per StartTransaction, unique and stable across restarts."""

    async def start(self, station: str, unique_id: str) -> int:
        """The id of the transaction this StartTransaction begins (the same id for a retry)."""
        ...

    async def issued(self, transaction_id: int) -> bool:
        """True if evbus ever handed out this id."""
        ...


class Events(Protocol):
    """Where handlers record what they noticed beyond the frame itself."""

    async def orphan_stop(self, station: str, transaction_id: int | str, unique_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    tokens: Tokens
    transactions: TransactionIds
    events: Events
    clock: Clock


@dataclass(frozen=True, slots=True)
class CallContext:
    station: str
    protocol: OcppProtocol
    unique_id: str
    action: str
    services: Services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def now(self) -> datetime:
        return self.services.clock()

    def now_text(self) -> str:
        """The current time as OCPP wants it: RFC 3339 UTC, milliseconds."""
        return rfc3339(self.services.clock(), timespec="milliseconds")


Payload = dict[str, Any]


Handler = Callable[[CallContext, Payload], Awaitable[Payload]]
