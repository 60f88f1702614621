"""One station's socket: its frame counter, the calls it waits on us for, the CALLs we send it.

Two rules of OCPP-J live here. Every CALL the station sends is answered once: the first answer for
its unique id that reaches the gateway is written to the socket, later ones (a processor's answer
to the station's retry) are dropped. And we keep one CALL of ours in flight: the next waits until
the station answered the previous one or its timeout passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from schemas.ocpp_j import Protocol

log = logging.getLogger(__name__)

MAX_AWAITING: Final = 256  # unanswered station CALLs remembered per socket
MAX_QUEUED_CALLS: Final = 100  # our CALLs waiting for the one in flight


@dataclass(slots=True)
class PendingCall:
    unique_id: str
    action: str
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False, slots=True)
class StationConnection:
    station: str
    connection_id: str
    protocol: Protocol
    remote_address: str
    socket: ServerConnection
    call_timeout: float
    connected_at: str
    frames: int = 0
    presence_revision: int = 0  # of the presence entry this socket wrote last; 0 = none written
    awaiting: OrderedDict[str, float] = field(default_factory=OrderedDict)
    pending: PendingCall | None = None
    # made with the first CALL of ours: most stations never get one, and a Queue is ~3 KB
    calls: asyncio.Queue[tuple[str, str, str, float]] | None = None
    sender: asyncio.Task[None] | None = None

    def next_msg_id(self, gateway: str) -> str:
        """``{gateway}:{connection}:{n}`` — unique per frame, stable across publish retries."""
        self.frames += 1
        return f"{gateway}:{self.connection_id}:{self.frames}"

    # --- the station's CALLs, answered once -----------------------------------------------------

    def expect_answer(self, unique_id: str) -> None:
        self.awaiting[unique_id] = time.monotonic()
        self.awaiting.move_to_end(unique_id)
        while len(self.awaiting) > MAX_AWAITING:
            dropped, _ = self.awaiting.popitem(last=False)
            log.warning("%s: forgot unanswered call %s (over %d waiting)", self.station, dropped, MAX_AWAITING)

    async def deliver_answer(self, unique_id: str, frame: str) -> bool:
        """Write our CALLRESULT/CALLERROR if the station still waits for it; False if it does not."""
        if self.awaiting.pop(unique_id, None) is None:
            return False
        return await self._send(frame)

    # --- our CALLs, one in flight ---------------------------------------------------------------

    def queue_call(self, unique_id: str, action: str, frame: str, timeout: float | None = None) -> bool:
        """Send ``frame`` once the CALL before it is answered; wait for the answer up to ``timeout``
        (the command's own, when shorter than the gateway's) before the next may go."""
        if self.calls is None:
            self.calls = asyncio.Queue(MAX_QUEUED_CALLS)
        wait = self.call_timeout if timeout is None else min(timeout, self.call_timeout)
        try:
            self.calls.put_nowait((unique_id, action, frame, wait))
        except asyncio.QueueFull:
            log.warning("%s: dropped CALL %s %s, %d already queued", self.station, action, unique_id, MAX_QUEUED_CALLS)
            return False
        if self.sender is None:
            self.sender = asyncio.create_task(self._send_calls(), name=f"calls-{self.station}")
        return True

    def take_answer(self, unique_id: str) -> PendingCall | None:
        """The call the station's CALLRESULT/CALLERROR answers, if it is the one in flight."""
        pending = self.pending
        if pending is None or pending.unique_id != unique_id:
            return None
        self.pending = None
        pending.answered.set()
        return pending

    async def _send_calls(self) -> None:
        assert self.calls is not None
        while True:
            unique_id, action, frame, wait = await self.calls.get()
            call = PendingCall(unique_id, action)
            self.pending = call
            if not await self._send(frame):
                return
            try:
                await asyncio.wait_for(call.answered.wait(), wait)
            except TimeoutError:
                log.info("%s: no answer to %s %s within %g s", self.station, action, unique_id, wait)
                if self.pending is call:
                    self.pending = None

    async def _send(self, frame: str) -> bool:
        try:
            await self.socket.send(frame)
        except ConnectionClosed:
            return False
        return True

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender
