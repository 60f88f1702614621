"""OCPP 1.6 stations with the bookkeeping a fault test needs: every CALL's unique id when it went on
the wire, the exact text of the answer it got and when, how each socket ended (close code, who
closed it), and answers that matched no CALL in flight.

A station holds one CALL in flight, numbers its unique ids ``u1, u2, …`` over all its connections
(never reusing one, so a unique id stored twice is a duplicate, not a retry), and reconnects after
a dropped socket, trying its gateway URLs in order (the first that accepts wins) with a short
backoff when none does. What it sends is its *work*: an ``async`` function of the station that
calls :meth:`Station.call` until the station stops. It answers every CALL of the CSMS with
``{"status": "Accepted"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

log = logging.getLogger(__name__)

PROTOCOL: Final = "ocpp1.6"
BACKOFF_S: Final = (0.2, 2.0)  # first delay, most; doubled per round of refused attempts, jittered
NOW: Final = "2026-01-01T00:00:00Z"  # timestamps the stations send (fixed: the answers do not depend on them)

Work = Callable[["Station"], Awaitable[None]]


class CallFailed(Exception):
    """No answer: the socket closed, the call timed out, or the station is stopping."""


@dataclass(slots=True)
class Closed:
    """How one of the station's sockets ended."""

    url: str
    code: int | None  # the close code the gateway sent (1006: the connection just broke)
    reason: str
    by_station: bool  # the station closed it (its call timed out, or it stopped)
    at: float  # time.monotonic()


@dataclass(eq=False)
class Station:
    id: str
    urls: list[str]  # gateway OCPP endpoints without the station id, tried in this order
    work: Work
    call_timeout: float = 20.0
    sent: dict[str, str] = field(default_factory=dict)  # unique id -> action, once written to the socket
    sent_at: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)  # unique id -> the answer frame's exact text
    answered_at: dict[str, float] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)  # answer frames to no CALL in flight
    closed: list[Closed] = field(default_factory=list)
    connected_to: list[str] = field(default_factory=list)  # the URL of each connection, in order
    csms_calls: list[list[Any]] = field(default_factory=list)
    timeouts: int = 0
    refused: int = 0  # connection attempts that failed
    boots: int = 0  # BootNotifications accepted (one per connection)
    stopping: bool = False
    state: dict[str, Any] = field(default_factory=dict)  # the work's own (an open transaction, …)

    def __post_init__(self) -> None:
        self._n = 0
        self.last_id = ""  # of the last CALL sent
        self._ws: ClientConnection | None = None
        self._waiting: tuple[str, asyncio.Future[str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random(self.id)
        self.online = asyncio.Event()  # connected and booted

    # --- the CALLs --------------------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL, return the decoded answer frame (CALLRESULT or CALLERROR); raise
        :class:`CallFailed` if none came (the station then drops the socket and reconnects)."""
        ws = self._ws
        if ws is None or self.stopping:
            raise CallFailed("offline" if ws is None else "stopping")
        self._n += 1
        unique_id = self.last_id = f"u{self._n}"
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting = (unique_id, waiter)
        try:
            try:
                await ws.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
            except ConnectionClosed as exc:
                raise CallFailed("closed before sending") from exc
            self.sent[unique_id] = action
            self.sent_at[unique_id] = time.monotonic()
            try:
                text = await asyncio.wait_for(waiter, self.call_timeout)
            except TimeoutError:
                self.timeouts += 1
                raise CallFailed(f"no answer to {action} {unique_id} within {self.call_timeout} s") from None
        finally:
            self._waiting = None
        self.answers[unique_id] = text
        self.answered_at[unique_id] = time.monotonic()
        frame: list[Any] = json.loads(text)
        return frame

    async def result(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """:meth:`call`, expecting a CALLRESULT; its payload."""
        frame = await self.call(action, payload)
        if frame[0] != 3:
            raise CallFailed(f"{action}: CALLERROR {frame[2:]}")
        result: dict[str, Any] = frame[2]
        return result

    # --- the connection ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"station-{self.id}")

    async def stop(self, timeout: float = 30.0) -> None:
        """No new CALLs; wait (bounded) for the one in flight, then close the socket."""
        self.stopping = True
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        rounds = 0
        while not self.stopping:
            ws = await self._connect()
            if ws is None:
                rounds += 1
                low, high = BACKOFF_S
                await asyncio.sleep(min(high, low * 2 ** (rounds - 1)) * self._rng.uniform(0.5, 1.0))
                continue
            rounds = 0
            await self._serve(ws)
            if not self.stopping:
                await asyncio.sleep(BACKOFF_S[0] * self._rng.uniform(0.5, 1.0))

    async def _connect(self) -> ClientConnection | None:
        for url in self.urls:
            try:
                ws = await websockets.connect(
                    f"{url}/{self.id}",
                    subprotocols=[websockets.Subprotocol(PROTOCOL)],
                    open_timeout=5,
                    close_timeout=1,
                    ping_interval=None,
                    compression=None,
                )
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.refused += 1
                log.debug("%s: %s refused: %r", self.id, url, exc)
                continue
            self.connected_to.append(url)
            return ws
        return None

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        url = self.connected_to[-1]
        reader = asyncio.create_task(self._read(ws), name=f"read-{self.id}")
        by_station = False
        try:
            try:
                await self.result(
                    "BootNotification", {"chargePointVendor": "evbus-chaos", "chargePointModel": "killer"}
                )
                self.boots += 1
                self.online.set()
                await self.work(self)
            except CallFailed:
                pass
            by_station = not reader.done()
            if by_station:
                with contextlib.suppress(Exception):
                    await ws.close(1000, "station stopping" if self.stopping else "no answer in time")
            await asyncio.wait({reader}, timeout=5)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._ws = None
            self.online.clear()
            received = ws.protocol.close_rcvd
            self.closed.append(
                Closed(
                    url=url,
                    code=received.code if received else None,
                    reason=received.reason if received else "",
                    by_station=by_station,
                    at=time.monotonic(),
                )
            )

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    self.csms_calls.append(frame)
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
                    continue
                waiting = self._waiting
                if waiting is not None and frame[1] == waiting[0] and not waiting[1].done():
                    waiting[1].set_result(str(text))
                else:
                    self.strays.append(str(text))
        except ConnectionClosed:
            pass
        finally:
            waiting = self._waiting
            if waiting is not None and not waiting[1].done():
                waiting[1].set_exception(CallFailed("socket closed"))

    # --- what was answered ------------------------------------------------------------------------

    def answered_since(self, moment: float) -> int:
        return sum(1 for at in self.answered_at.values() if at >= moment)

    def sent_since(self, moment: float) -> int:
        return sum(1 for at in self.sent_at.values() if at >= moment)


class Fleet:
    """Stations started together, stopped together, counted together."""

    def __init__(self, stations: list[Station]) -> None:
        self.stations = stations

    @classmethod
    def of(cls, prefix: str, count: int, urls: list[str], work: Work, call_timeout: float = 20.0) -> Fleet:
        return cls([Station(f"{prefix}{n:02d}", urls, work, call_timeout) for n in range(1, count + 1)])

    def __iter__(self) -> Any:
        return iter(self.stations)

    def start(self) -> None:
        for station in self.stations:
            station.start()

    async def stop(self, timeout: float = 30.0) -> None:
        await asyncio.gather(*(s.stop(timeout) for s in self.stations))

    async def online(self, timeout: float = 30.0) -> None:
        """Wait until every station is connected and booted."""
        async with asyncio.timeout(timeout):
            for station in self.stations:
                await station.online.wait()

    def count(self, what: Callable[[Station], int]) -> int:
        return sum(what(s) for s in self.stations)

    @property
    def sent(self) -> int:
        return self.count(lambda s: len(s.sent))

    @property
    def answered(self) -> int:
        return self.count(lambda s: len(s.answers))

    def answered_since(self, moment: float) -> int:
        return self.count(lambda s: s.answered_since(moment))


# --- work -----------------------------------------------------------------------------------------


def round_trips(pause: float) -> Work:
    """Heartbeats and MeterValues, one after the other, ``pause`` seconds apart."""

    async def work(station: Station) -> None:
        turn = 0
        while not station.stopping:
            turn += 1
            if turn % 2:
                await station.call("Heartbeat", {})
            else:
                sample = {"value": str(turn), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                await station.call(
                    "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]}
                )
            await asyncio.sleep(pause)

    return work


def charging(pause: float) -> Work:
    """Transactions: StartTransaction, StatusNotification Charging, a MeterValues, StopTransaction,
    StatusNotification Available, a Heartbeat, ``pause`` seconds apart. A transaction a dropped
    socket left open is stopped first on the next connection. Every transaction id the CSMS gave
    goes into ``state["transactions"]`` (unique id -> id)."""

    async def work(station: Station) -> None:
        given: dict[str, int] = station.state.setdefault("transactions", {})
        meter = station.state.get("meter", 1000)
        while not station.stopping:
            open_id = station.state.get("open")
            if open_id is None:
                start = {"connectorId": 1, "idTag": f"TAG-{station.id}", "meterStart": meter, "timestamp": NOW}
                result = await station.result("StartTransaction", start)
                open_id = station.state["open"] = int(result["transactionId"])
                given[station.last_id] = open_id
                await asyncio.sleep(pause)
                await station.call("StatusNotification", _status("Charging"))
                await asyncio.sleep(pause)
                sample = {"value": str(meter + 500), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                values = [{"timestamp": NOW, "sampledValue": [sample]}]
                await station.call("MeterValues", {"connectorId": 1, "transactionId": open_id, "meterValue": values})
                await asyncio.sleep(pause)
            meter += 1000
            stop = {"transactionId": open_id, "meterStop": meter, "timestamp": NOW, "reason": "Local"}
            await station.result("StopTransaction", stop)
            station.state["open"] = None
            station.state["meter"] = meter
            await asyncio.sleep(pause)
            await station.call("StatusNotification", _status("Available"))
            await asyncio.sleep(pause)
            await station.call("Heartbeat", {})
            await asyncio.sleep(pause)

    return work


def _status(status: str) -> dict[str, Any]:
    return {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": NOW}
