"""The OCPP-J client side of a simulated station: its CALLs, one in flight, and the reader that
pairs answers with them and hands the CSMS's CALLs to the station.

The hot path of roundtrip mode lives here: take the lock, concatenate a pre-encoded frame around
a fresh id, ``send``, and wait on a future the reader resolves — no JSON encoding, no validation,
no per-message objects beyond that future and its timer.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from evbus.sim.stats import Stats
from evbus.sim.wire import call_frame, decode
from schemas import ocpp_j

log = logging.getLogger(__name__)


class CallFailed(Exception):
    """A CALL of ours got no CALLRESULT."""


class Refused(CallFailed):
    """The CSMS answered CALLERROR."""


class CallTimeout(CallFailed):
    pass


class Disconnected(CallFailed):
    pass


class CallLog:
    """The unique ids of a station's CALLs: written to its socket, and answered (CALLRESULT or
    CALLERROR). Kept only when asked for (``SimConfig.record_calls``): it grows with the run."""

    __slots__ = ("answered", "sent")

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.answered: list[str] = []


class Alarm:
    """Sleeps that :meth:`ring` ends early: stopping, a rescheduled heartbeat, a remote start."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(max(seconds, 0.0), _wake, waiter)
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    def ring(self) -> None:
        for waiter in self._waiters:
            _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future[list[Any]]) -> None:
    if not waiter.done():
        waiter.set_exception(CallTimeout())


class Client(abc.ABC):
    """A websocket's CALLs and answers. :meth:`on_call` is what the station does with the CSMS's CALLs."""

    def __init__(self, station_id: str, stats: Stats, call_timeout: float, id_prefix: str) -> None:
        self.id = station_id
        self.stats = stats
        self._call_timeout = call_timeout
        self._id_prefix = id_prefix
        self._ids = 0
        self._lock = asyncio.Lock()
        self._waiting_id: str | None = None
        self._waiting: asyncio.Future[list[Any]] | None = None
        self._ws: ClientConnection | None = None
        self.call_log: CallLog | None = None

    @abc.abstractmethod
    async def on_call(self, ws: ClientConnection, text: str | bytes) -> None:
        """A frame the CSMS sent that is not the answer awaited: the subclass handles it."""

    def next_id(self) -> str:
        self._ids += 1
        return self._id_prefix + str(self._ids)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload (raises :class:`CallFailed` otherwise)."""
        async with self._lock:
            unique_id = self.next_id()
            frame = await self._exchange(
                unique_id, call_frame(unique_id, action, payload), measured=action != "BootNotification"
            )
        return self._result(frame)

    async def call_built(self, build: Callable[[], tuple[str, dict[str, Any]] | None]) -> dict[str, Any] | None:
        """Like :meth:`call`, with the message built once it is this CALL's turn (None: nothing to send)."""
        async with self._lock:
            message = build()
            if message is None:
                return None
            unique_id = self.next_id()
            frame = await self._exchange(unique_id, call_frame(unique_id, *message), measured=True)
        return self._result(frame)

    def _result(self, frame: list[Any]) -> dict[str, Any]:
        if frame[0] != ocpp_j.MessageType.CALLRESULT:
            raise Refused(f"{frame[2] if len(frame) > 2 else '?'}: {frame[3] if len(frame) > 3 else ''}")
        payload = frame[2]
        return payload if isinstance(payload, dict) else {}

    async def _exchange(self, unique_id: str, frame: str, *, measured: bool) -> list[Any]:
        """Send ``frame`` and wait for its answer (call with the lock held)."""
        ws = self._ws
        if ws is None:
            raise Disconnected()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting_id, self._waiting = unique_id, waiter
        timer = loop.call_later(self._call_timeout, _expire, waiter)
        started = time.perf_counter()
        calls = self.call_log
        try:
            await ws.send(frame)
            if calls is not None:
                calls.sent.append(unique_id)
            answer = await waiter
        except CallTimeout:
            self.stats.timeouts += 1
            raise
        except ConnectionClosed:
            raise Disconnected() from None
        finally:
            timer.cancel()
            self._waiting_id = self._waiting = None
        if calls is not None:
            calls.answered.append(unique_id)
        if measured:
            self.stats.answered(time.perf_counter() - started)
        if answer[0] != ocpp_j.MessageType.CALLRESULT:
            self.stats.call_errors += 1
        return answer

    # --- frames from the CSMS -------------------------------------------------------------------

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                try:
                    frame = decode(text)
                except Exception:
                    self.stats.bad_frames += 1
                    continue
                if type(frame) is not list or len(frame) < 3:
                    self.stats.bad_frames += 1
                    continue
                kind = frame[0]
                if kind == 3 or kind == 4:
                    waiter = self._waiting
                    if waiter is not None and frame[1] == self._waiting_id and not waiter.done():
                        waiter.set_result(frame)
                    else:
                        log.debug("%s: answer %s to no CALL in flight", self.id, frame[1])
                elif kind == 2:
                    await self.on_call(ws, text)
                else:
                    self.stats.bad_frames += 1
        except ConnectionClosed:
            pass
        finally:
            waiter = self._waiting
            if waiter is not None and not waiter.done():
                waiter.set_exception(Disconnected())
