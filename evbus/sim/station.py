"""One simulated charge point: its connection's lifecycle (connect, boot, reconnect with backoff),
what it does in each mode, and how it answers and follows up the CSMS's CALLs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from evbus.sim.answer import answer
from evbus.sim.charging import Charge
from evbus.sim.client import Alarm, CallFailed, CallLog, CallTimeout, Client, Refused
from evbus.sim.device import Connector, Device, Transaction
from evbus.sim.effects import (
    Effect,
    ExpireReservation,
    Reboot,
    Reschedule,
    Send,
    SendStatus,
    Start,
    Stop,
    Trigger,
)
from evbus.sim.messages import messages_for
from evbus.sim.wire import RoundTripFrames
from schemas import ocpp_j
from schemas.ocpp_j import Call, Malformed

if TYPE_CHECKING:
    from evbus.sim.simulator import Simulator

log = logging.getLogger(__name__)

Outcome = Literal["stop", "reboot", "dropped"]
OPEN_TIMEOUT: Final = 30.0  # seconds for TCP + websocket handshake
CLOSE_TIMEOUT: Final = 2.0
RETRY_BOOT: Final = 10.0  # seconds before retrying a boot that got no usable answer
NATURAL_ENDS: Final = ("EVDisconnected", "Local")  # why a car leaves on its own (valid in 1.6 and 2.x)
NATURAL_WEIGHTS: Final = (3, 2)


class Station(Client):
    def __init__(self, sim: Simulator, number: int) -> None:
        config = sim.config
        super().__init__(config.station_id(number), sim.stats, config.call_timeout, sim.run_id + "-")
        self.sim = sim
        self.url = config.station_url(self.id)
        self.protocol = config.protocol
        self.rng = random.Random(f"{config.seed}:{self.id}")  # noqa: S311 - simulated behaviour, not secrets
        registers = [round(self.rng.uniform(100_000, 5_000_000)) for _ in range(2)]
        self.device = Device(self.protocol, self.id, f"SIM{number:07d}", [float(r) for r in registers])
        self.device.set_meter_period(sim.meter_period)
        self.messages = messages_for(self.device)
        self.call_log = CallLog() if config.record_calls else None
        self._headers: dict[str, str] = {}
        if config.password is not None:
            token = base64.b64encode(f"{self.id}:{config.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._workers: set[asyncio.Task[Any]] = set()
        self._ending: Outcome | None = None
        self._ended: asyncio.Future[None] | None = None
        self._reboot_reason = ""
        self._boot_reason = "PowerUp"
        self._alarm = Alarm()  # reconnect backoff, boot retries, pacing, delayed notifications
        self._heartbeat_alarm = Alarm()
        self._meter_alarm = Alarm()
        self._connector_alarms = {n: Alarm() for n in self.device.connectors}
        self._meter_task: asyncio.Task[None] | None = None
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._sent_status: dict[int, str] = {}
        self.booted = False
        self.connections = 0

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._ws is not None

    def end(self, how: Outcome = "stop") -> None:
        """Wind down this connection: ``stop`` for good, ``reboot`` to reconnect and boot again."""
        if self._ending == "stop":
            return
        self._ending = how
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)
        for alarm in (self._alarm, self._heartbeat_alarm, self._meter_alarm, *self._connector_alarms.values()):
            alarm.ring()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; until :meth:`end` (or cancellation)."""
        attempt = 0
        while self._ending != "stop":
            self._ending = None
            try:
                async with self.sim.gate:
                    ws = await connect(
                        self.url,
                        subprotocols=[Subprotocol(self.protocol)],
                        additional_headers=self._headers or None,
                        compression=None,
                        proxy=None,
                        open_timeout=OPEN_TIMEOUT,
                        close_timeout=CLOSE_TIMEOUT,
                        ping_interval=None,  # the CSMS pings; answering is automatic
                        user_agent_header="evbus-sim",
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.handshake_failed(exc)
                attempt += 1
                log.debug("%s: connection failed (%s: %s)", self.id, type(exc).__name__, exc)
                await self._alarm.sleep(self._backoff(attempt))
                continue
            if self.connections:
                self.stats.reconnects += 1
            self.connections += 1
            attempt = 0
            outcome = await self._serve(ws)
            if outcome == "stop":
                break
            if outcome == "reboot":
                await self._alarm.sleep(self.sim.config.reboot_delay * self.rng.uniform(0.8, 1.2))
                continue
            self.stats.disconnects += 1
            attempt += 1
            await self._alarm.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        config = self.sim.config
        return min(config.backoff_max, config.backoff_base * 2 ** (attempt - 1)) * self.rng.uniform(0.5, 1.0)

    async def _serve(self, ws: ClientConnection) -> Outcome:
        self._ws = ws
        self._ended = asyncio.get_running_loop().create_future()
        self._sent_status.clear()
        self.stats.connected += 1
        reader = asyncio.create_task(self._read(ws), name=f"read-{self.id}")
        main = asyncio.create_task(self._operate(), name=f"main-{self.id}")
        try:
            await asyncio.wait((reader, main), return_when=asyncio.FIRST_COMPLETED)
            if (
                main.done()
                and not main.cancelled()
                and (exc := main.exception()) is not None
                and not isinstance(exc, CallFailed | ConnectionClosed)
            ):
                log.error("%s: %s", self.id, exc, exc_info=exc)
            if not reader.done():
                with contextlib.suppress(Exception):
                    await ws.close(1000, "simulator stopping" if self._ending == "stop" else "")
                await asyncio.wait((reader,), timeout=CLOSE_TIMEOUT + 1)
        finally:
            tasks = [reader, main, *self._workers]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._workers.clear()
            self._runners.clear()
            self._meter_task = None
            self._ws = None
            self.stats.connected -= 1
            if self.booted:
                self.booted = False
                self.stats.booted -= 1
        return self._ending or "dropped"

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name or None)
        self._workers.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._workers.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, CallFailed):
            log.error("%s: %s failed: %s", self.id, task.get_name(), exc, exc_info=exc)

    # --- what the station does on a connection --------------------------------------------------

    async def _operate(self) -> None:
        if not await self._boot(self._boot_reason):
            return
        self._boot_reason = "PowerUp"
        for c in self.device.connectors.values():
            await self._finish_leftover(c)
            await self._status(c, force=True)
            if c.reservation is not None:
                self._spawn(self._expire(c.reservation.id, c.reservation.expires_at), "reservation")
        mode = self.sim.config.mode
        if mode == "roundtrip":
            self._spawn(self._round_trips(), "roundtrip")
        else:
            self._spawn(self._heartbeats(), "heartbeat")
        if mode == "session":
            for c in self.device.connectors.values():
                self._runners[c.id] = self._spawn(self._sessions(c), f"connector-{c.id}")
        for c in self.device.connectors.values():
            if c.start_request is not None and c.id not in self._runners:  # asked for before a reconnect
                self._spawn(self._transaction(c), f"transaction-{c.id}")
        assert self._ended is not None
        await self._ended
        # winding down: let running calls and transactions finish, within the grace period
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=self.sim.config.grace)

    async def _boot(self, reason: str) -> bool:
        """BootNotification until Accepted (retrying after the interval Pending/Rejected asks for)."""
        while not self._ending:
            try:
                result = await self.call("BootNotification", self.messages.boot(reason))
            except (Refused, CallTimeout):
                await self._alarm.sleep(RETRY_BOOT)
                continue
            interval = result.get("interval", 0)
            if result.get("status") == "Accepted":
                if isinstance(interval, int) and interval > 0:
                    self.device.set_heartbeat_interval(interval)
                    self._heartbeat_alarm.ring()
                if not self.booted:
                    self.booted = True
                    self.stats.booted += 1
                return True
            self.stats.boots_refused += 1
            await self._alarm.sleep(interval if isinstance(interval, int) and interval > 0 else RETRY_BOOT)
        return False

    async def _periodically(self, period: Callable[[], float], alarm: Alarm) -> AsyncGenerator[None, None]:
        """Yield every ``period()`` seconds until the station ends. The period is read again at each
        wake-up (a CSMS may change it; the alarm is rung then), 0 or less means never."""
        last = time.monotonic()
        while not self._ending:
            interval = period()
            due = last + interval if interval > 0 else float("inf")
            now = time.monotonic()
            if now < due:
                await alarm.sleep(min(due - now, 3600.0))
                continue
            last = now
            yield

    async def _heartbeats(self) -> None:
        async for _ in self._periodically(lambda: self.device.heartbeat_interval, self._heartbeat_alarm):
            with contextlib.suppress(Refused, CallTimeout):
                await self.call("Heartbeat", {})

    async def _round_trips(self) -> None:
        frames = RoundTripFrames(self.protocol, self.sim.clock, round(self.device.connectors[1].register_wh))
        period = self.sim.round_trip_period
        turn = 0
        due = time.monotonic() + (self.rng.uniform(0.0, period) if period else 0.0)
        lock = self._lock
        while not self._ending:
            if period:
                now = time.monotonic()
                if due > now:
                    await self._alarm.sleep(due - now)
                    if self._ending:
                        break
                due = max(due + period, now - period)  # catch up after a stall, but never in a burst
            async with lock:
                unique_id = self.next_id()
                with contextlib.suppress(CallTimeout):
                    await self._exchange(unique_id, frames.frame(turn, unique_id), measured=True)
            turn += 1

    # --- transactions ---------------------------------------------------------------------------

    async def _sessions(self, c: Connector) -> None:
        """Session mode, one connector: a car arrives, charges, leaves; a pause; again."""
        tau = self.sim.meter_period or 5.0
        alarm = self._connector_alarms[c.id]
        await alarm.sleep(self.rng.uniform(0.0, 3.0) * tau)
        while not self._ending:
            if c.start_request is not None or (c.phase == "idle" and c.operative and c.reservation is None):
                await self._transaction(c)
            if self._ending:
                break
            await alarm.sleep(self.rng.uniform(2.0, 8.0) * tau)

    def _start(self, c: Connector) -> None:
        runner = self._runners.get(c.id)
        if runner is not None and not runner.done():
            self._connector_alarms[c.id].ring()
        else:
            self._spawn(self._transaction(c), f"transaction-{c.id}")

    async def _transaction(self, c: Connector) -> None:
        """Authorize (unless the CSMS asked for it), start, meter, stop, as the station's version says."""
        rng = self.rng
        request, c.start_request = c.start_request, None
        if c.phase != "idle":
            return
        id_tag = request.id_tag if request else f"{rng.getrandbits(32):08X}"
        token_type = request.token_type if request else "ISO14443"
        c.phase = "preparing"
        try:
            await self._status(c)
            if request is None:
                authorized = self.messages.authorized(
                    await self.call("Authorize", self.messages.authorize(id_tag, token_type))
                )
                if not authorized:
                    self.stats.authorize_refused += 1
                    return
            reservation = c.reservation if c.reservation and c.reservation.id_tag == id_tag else None
            c.reservation = None if reservation else c.reservation
            tx = Transaction(
                ocpp_id=None if self.device.v16 else str(uuid.uuid4()),
                connector=c.id,
                id_tag=id_tag,
                token_type=token_type,
                meter_start_wh=c.register_wh,
                remote_start_id=request.remote_start_id if request else None,
                reservation_id=reservation.id if reservation else None,
            )
            c.transaction, c.stop_reason = tx, None
            action, payload = self.messages.start(c, tx)
            accepted = self.messages.started(await self.call(action, payload), tx)
            self.stats.sessions_started += 1
            tx.charge = Charge.plugged(rng, time.monotonic())
            c.phase = "charging"
            await self._status(c)
            if not accepted:
                self.stats.authorize_refused += 1
                c.stop_reason = "DeAuthorized"
            else:
                self._ensure_meter_values()
                await self._charge(c)
            await self._stop(c, c.stop_reason or self._end_reason())
            if not self._ending:
                await self._connector_alarms[c.id].sleep(rng.uniform(0.5, 1.5) * (self.sim.meter_period or 5.0))
        except (Refused, CallTimeout):  # the CSMS would not take part: end it here
            if c.transaction is not None:
                with contextlib.suppress(CallFailed):
                    await self._stop(c, "Other")
                c.transaction = None
        finally:
            if c.transaction is None and c.phase != "idle":
                await self._idle(c)

    async def _charge(self, c: Connector) -> None:
        tau = self.sim.meter_period or 5.0
        ends = time.monotonic() + self.rng.uniform(6.0, 20.0) * tau
        alarm = self._connector_alarms[c.id]
        while not self._ending and c.stop_reason is None:
            remaining = ends - time.monotonic()
            if remaining <= 0:
                c.stop_reason = self.rng.choices(NATURAL_ENDS, NATURAL_WEIGHTS)[0]
                break
            await alarm.sleep(remaining)

    def _end_reason(self) -> str:
        if self._ending == "reboot":
            return self._reboot_reason
        return "Other"

    def _read_meter(self, c: Connector) -> None:
        tx = c.transaction
        if tx is not None and tx.charge is not None and c.phase == "charging":
            c.register_wh = tx.charge.advance(c.register_wh, time.monotonic(), self.rng)

    async def _stop(self, c: Connector, reason: str) -> None:
        tx = c.transaction
        if tx is None:
            return
        self._read_meter(c)
        c.phase = "finishing"
        stop = self.messages.stop(c, tx, reason)
        try:
            if stop is not None:
                await self.call(*stop)
                self.stats.sessions_completed += 1
        finally:
            c.transaction, c.stop_reason = None, None
        await self._status(c)

    async def _idle(self, c: Connector) -> None:
        """The car has left: the connector is free (or becomes unavailable, or the station resets)."""
        c.phase = "idle"
        if c.inoperative_when_idle:
            c.inoperative_when_idle, c.operative = False, False
        if self._ws is not None and not (self._ending and self._ending != "stop"):
            with contextlib.suppress(CallFailed):
                await self._status(c)
        if self.device.reset_when_idle and all(x.phase == "idle" for x in self.device.connectors.values()):
            self.device.reset_when_idle = False
            self._reboot("ImmediateReset")

    async def _finish_leftover(self, c: Connector) -> None:
        """A transaction the last connection left open (the socket dropped): report it stopped."""
        if c.transaction is not None:
            await self._stop(c, "PowerLoss")
        c.phase = "idle"  # a start the CSMS asked for (start_request) is still to come

    def _ensure_meter_values(self) -> None:
        if self._meter_task is None or self._meter_task.done():
            self._meter_task = self._spawn(self._meter_values(), "meter-values")

    async def _meter_values(self) -> None:
        """Periodic meter values of the charging connectors, in turn, one message per period."""
        turn = 0
        async with contextlib.aclosing(
            self._periodically(lambda: self.device.meter_period, self._meter_alarm)
        ) as ticks:
            async for _ in ticks:
                charging = [c for c in self.device.connectors.values() if c.phase == "charging"]
                if not charging:
                    return
                turn += 1
                build = functools.partial(self._periodic_meter_values, charging[turn % len(charging)])
                with contextlib.suppress(Refused, CallTimeout):
                    await self.call_built(build)

    def _periodic_meter_values(self, c: Connector) -> tuple[str, dict[str, Any]] | None:
        if c.phase != "charging" or c.stop_reason is not None:
            return None
        self._read_meter(c)
        return self.messages.update(c, self.rng)

    # --- frames from the CSMS -------------------------------------------------------------------

    async def on_call(self, ws: ClientConnection, text: str | bytes) -> None:
        message = ocpp_j.parse(text, self.protocol)
        if isinstance(message, Malformed):
            self.stats.bad_frames += 1
            if message.answer is not None:
                await ws.send(message.answer)
            return
        assert isinstance(message, Call)
        frame, effects = answer(self.device, message.unique_id, message.action, message.payload)
        await ws.send(frame)
        self.stats.csms_calls_answered += 1
        if effects:
            self._spawn(self._carry_out(effects), f"after-{message.action}")

    async def _carry_out(self, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            if self._ending:
                return
            if isinstance(effect, SendStatus):
                chosen = self.device.connector(effect.connector)
                for c in [chosen] if chosen else self.device.connectors.values():
                    await self._status(c)
            elif isinstance(effect, Start):
                self._start(self.device.connectors[effect.connector])
            elif isinstance(effect, Stop):
                self._connector_alarms[effect.connector].ring()
            elif isinstance(effect, Reboot):
                self._reboot(effect.reason)
            elif isinstance(effect, Send):
                if effect.delay:
                    await self._alarm.sleep(effect.delay)
                    if self._ending:
                        return
                await self.call(effect.action, effect.payload)
            elif isinstance(effect, Trigger):
                await self._trigger(effect.message, effect.connector)
            elif isinstance(effect, Reschedule):
                self._heartbeat_alarm.ring()
                self._meter_alarm.ring()
            elif isinstance(effect, ExpireReservation):
                self._spawn(self._expire(effect.reservation_id, effect.at), "reservation")

    def _reboot(self, reason: str) -> None:
        self._reboot_reason = reason
        self._boot_reason = "RemoteReset"
        self.end("reboot")

    async def _trigger(self, message: str, number: int | None) -> None:
        chosen = self.device.connector(number)
        targets = [chosen] if chosen else list(self.device.connectors.values())
        if message == "BootNotification":
            result = await self.call("BootNotification", self.messages.boot("Triggered"))
            if (
                result.get("status") == "Accepted"
                and isinstance(result.get("interval"), int)
                and result["interval"] > 0
            ):
                self.device.set_heartbeat_interval(result["interval"])
                self._heartbeat_alarm.ring()
        elif message == "Heartbeat":
            await self.call("Heartbeat", {})
        elif message == "StatusNotification":
            for c in targets:
                await self._status(c, force=True)
        elif message in ("MeterValues", "TransactionEvent"):
            for c in targets:
                await self.call_built(functools.partial(self._triggered_meter_values, c, message))
        elif (notification := self.messages.notification(message)) is not None:
            await self.call(*notification)

    def _triggered_meter_values(self, c: Connector, message: str) -> tuple[str, dict[str, Any]] | None:
        if message == "TransactionEvent" and c.transaction is None:
            return None
        self._read_meter(c)
        if message == "MeterValues":
            return self.messages.meter_values(c, "Trigger", self.rng)
        return self.messages.update(c, self.rng, trigger=True)

    async def _status(self, c: Connector, *, force: bool = False) -> None:
        text = self.messages.status_text(c)
        if not force and self._sent_status.get(c.id) == text:
            return
        self._sent_status[c.id] = text
        await self.call("StatusNotification", self.messages.status(c))

    async def _expire(self, reservation_id: int, at: float) -> None:
        await self._alarm.sleep(at - time.time())
        c = self.device.reservation(reservation_id)
        if self._ending or c is None or c.reservation is None or c.reservation.expires_at > time.time():
            return
        c.reservation = None
        if not self.device.v16:
            await self.call(
                "ReservationStatusUpdate", {"reservationId": reservation_id, "reservationUpdateStatus": "Expired"}
            )
        await self._status(c)
