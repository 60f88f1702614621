"""Many stations in one process: start them at the allowed pace, run, stop them gracefully, report.

Use it from Python (tests, benchmarks)::

    async with simulate(url="ws://127.0.0.1:9000/ocpp", stations=50, mode="roundtrip") as sim:
        await sim.until_booted()
        ...
    print(sim.report)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from evbus.sim.config import SimConfig
from evbus.sim.station import Station
from evbus.sim.stats import Report, Stats, report
from evbus.sim.wire import SecondClock

log = logging.getLogger(__name__)

HANDSHAKES_IN_FLIGHT: Final = 100  # without --connect-rate: as fast as the server accepts, this many at a time
SPARE_FILES: Final = 64


class ConnectGate:
    """At most ``rate`` new connections per second; no rate: at most :data:`HANDSHAKES_IN_FLIGHT` at
    once; rate 0: no limit at all (every station at the same moment, if that is what you want)."""

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._next = 0.0
        self._slots = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT) if rate is None else None

    async def __aenter__(self) -> None:
        if self._slots is not None:
            await self._slots.acquire()
        elif self._rate:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self._rate
            if slot > now:
                await asyncio.sleep(slot - now)

    async def __aexit__(self, *exc: object) -> None:
        if self._slots is not None:
            self._slots.release()


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.clock = SecondClock()
        self.run_id = secrets.token_hex(4)  # unique ids of this run never repeat an earlier run's
        pace = config.pace
        self.meter_period = 1.0 / pace if config.mode == "session" and pace > 0 else 5.0
        self.round_trip_period = config.stations / pace if config.mode == "roundtrip" and pace > 0 else 0.0
        self.gate = ConnectGate(config.connect_rate)
        self.stations = [Station(self, n) for n in range(config.first, config.first + config.stations)]
        self._by_id = {s.id: s for s in self.stations}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0
        self.stopping = False
        self.report: Report | None = None

    def station(self, station_id: str) -> Station:
        return self._by_id[station_id]

    def call_log(self) -> dict[str, dict[str, list[str]]]:
        """Per station, the unique ids of its CALLs ``sent`` and ``answered`` (``record_calls`` runs only)."""
        return {
            s.id: {"sent": list(s.call_log.sent), "answered": list(s.call_log.answered)}
            for s in self.stations
            if s.call_log is not None
        }

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started if self._started else 0.0

    async def start(self) -> None:
        _raise_file_limit(self.config.stations + SPARE_FILES)
        self._started = time.monotonic()
        self._tasks = [asyncio.create_task(self._run(s), name=f"station-{s.id}") for s in self.stations]

    async def _run(self, station: Station) -> None:
        try:
            await station.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stopped on an error", station.id)

    async def until_booted(self, count: int | None = None, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` stations (default: all) have their BootNotification accepted."""
        wanted = self.config.stations if count is None else count
        deadline = time.monotonic() + timeout
        while self.stats.booted < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.stats.booted} of {wanted} stations booted within {timeout} s")
            await asyncio.sleep(0.02)

    async def stop(self) -> Report:
        """End every station (finishing in-flight calls and open transactions) and report."""
        if self.report is not None:
            return self.report
        self.stopping = True
        seconds, connected = self.elapsed, self.stats.connected
        for station, task in zip(self.stations, self._tasks, strict=True):
            if station.online:
                station.end("stop")
            else:
                task.cancel()  # connecting or waiting to reconnect: nothing to finish
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.config.grace + 5.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.report = report(
            self.stats,
            stations=self.config.stations,
            protocol=self.config.protocol,
            mode=self.config.mode,
            seconds=seconds,
            connected=connected,
        )
        return self.report

    async def run(self, stop: asyncio.Event | None = None) -> Report:
        """Start, run for ``config.duration`` seconds (0: until ``stop`` is set), stop, report."""
        stop = stop or asyncio.Event()
        await self.start()
        try:
            await asyncio.wait_for(stop.wait(), self.config.duration or None)
        except TimeoutError:
            pass
        finally:
            result = await self.stop()
        return result


@contextlib.asynccontextmanager
async def simulate(config: SimConfig | None = None, **options: Any) -> AsyncIterator[Simulator]:
    """A running :class:`Simulator` (``config`` or :class:`SimConfig` ``options``), stopped on exit."""
    sim = Simulator(config or SimConfig(**options))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            log.warning("open-file limit %d is below the %d this run needs (raise it with ulimit -n)", hard, wanted)
