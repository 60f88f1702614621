"""Storing messages in JetStream: the one way evbus writes frames and events.

:class:`Store` publishes with a reply subject of its own and matches JetStream's acks on one
subscription. That is what ``js.publish`` does per message, without what it adds on the hot path
(a random token from the OS per publish, ``asyncio.wait_for`` per ack, ``json.loads`` into a
dataclass): half the Python time per stored frame (bench/publish.py, bench/RESULTS.md). It also
lets a caller send now and await the ack later, so publishes from one connection are pipelined
while NATS keeps them in order.

:func:`publish_until_stored` retries a publish until it is stored. Every retry carries the same
headers, so the same ``Nats-Msg-Id``: a publish whose ack was lost is stored once (the streams'
duplicate window is 2 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from typing import Final

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

ACK_TIMEOUT_S: Final = 2.0
_SWEEP_S: Final = 0.25


class StorageUnavailable(RuntimeError):
    """JetStream did not acknowledge a message within the budget."""


class NotStored(ConnectionError):
    """One publish was not acknowledged: timed out, no stream listening, or JetStream said no."""


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _ApiError | None = None


_decode_ack = msgspec.json.Decoder(_PubAck).decode


class Store:
    """JetStream publishes on one NATS connection, their acks matched on one reply subscription."""

    def __init__(self, nc: NATS, ack_timeout: float = ACK_TIMEOUT_S) -> None:
        self._nc = nc
        self._ack_timeout = ack_timeout
        self._prefix = ""
        self._tokens = itertools.count()
        # insertion order is deadline order: one timeout for all, so expired ones are at the front
        self._waiting: OrderedDict[str, tuple[float, asyncio.Future[int]]] = OrderedDict()
        self._sub: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> Store:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_ack, pending_msgs_limit=-1)
        self._sweeper = asyncio.create_task(self._sweep(), name="store-ack-timeouts")
        return self

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._sub:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        for _, future in self._waiting.values():
            if not future.done():
                future.set_exception(NotStored("store stopped"))
        self._waiting.clear()

    async def send(self, subject: str, body: bytes, headers: dict[str, str]) -> asyncio.Future[int]:
        """Publish now; the returned future gives the stream sequence, or raises :class:`NotStored`."""
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._waiting[token] = (loop.time() + self._ack_timeout, future)
        try:
            await self._nc.publish(subject, body, reply=self._prefix + token, headers=headers)
        except Exception as exc:
            self._waiting.pop(token, None)
            raise NotStored(f"{subject}: {exc!r}") from exc
        return future

    async def store(self, subject: str, body: bytes, headers: dict[str, str]) -> int:
        """Publish and wait for the ack; the stream sequence, or :class:`NotStored`."""
        return await (await self.send(subject, body, headers))

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if entry is None or entry[1].done():
            return  # timed out already; a retry under the same Nats-Msg-Id is stored once
        future = entry[1]
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(NotStored(f"no stream stores {msg.subject!r} (no responders)"))
            return
        try:
            ack = _decode_ack(msg.data)
        except msgspec.DecodeError as exc:
            future.set_exception(NotStored(f"unreadable JetStream ack {msg.data[:200]!r}: {exc}"))
            return
        if ack.error is not None:
            future.set_exception(NotStored(f"JetStream refused: {ack.error.description} ({ack.error.err_code})"))
        else:
            future.set_result(ack.seq)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = loop.time()
            while self._waiting:
                token, (deadline, future) = next(iter(self._waiting.items()))
                if deadline > now:
                    break
                del self._waiting[token]
                if not future.done():
                    future.set_exception(NotStored(f"no JetStream ack within {self._ack_timeout:.1f} s"))


async def publish_until_stored(
    store: Store, subject: str, body: bytes, headers: dict[str, str], budget: float | None
) -> int:
    """Publish and await the ack, retrying with backoff; ``budget=None`` retries for ever."""
    loop = asyncio.get_running_loop()
    deadline = None if budget is None else loop.time() + budget
    delay = 0.05
    while True:
        try:
            return await store.store(subject, body, headers)
        except NotStored as exc:
            if deadline is not None and loop.time() + delay > deadline:
                raise StorageUnavailable(f"no JetStream ack for {subject}: {exc}") from exc
            log.warning("%s not stored yet (%s), retrying", subject, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
