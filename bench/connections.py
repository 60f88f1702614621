"""Connection capacity: many mostly idle stations on ONE gateway process, and a reconnect storm.

    .venv/bin/python -m bench.connections [--stations 10000] [--protocol ocpp1.6] [--connect-rate R]
        [--heartbeat 60] [--idle 60] [--baseline-src DIR] [--profile DIR] [--json-out FILE] [--workdir DIR]

Each scenario runs on its own nats-server (``evbus.embedded_nats``, free ports, fresh store) with
``evbus processors`` and ``evbus gateway`` as two separate processes, so the gateway's RSS and CPU
are its own. The stations are :class:`evbus.sim.Simulator` in idle mode (boot, a StatusNotification
per connector, heartbeats every ``--heartbeat`` seconds, which the processor's BootNotification
answer sets through ``EVBUS_HEARTBEAT_INTERVAL``) in a third process, this module's ``_client``
mode, which the harness drives over its stdin/stdout.

1. **Connect**: gateway RSS before any station; start every station (``--connect-rate``: the sim's
   option; default: as fast as the gateway accepts, 100 handshakes in flight); time until all are
   connected (handshakes/s) and booted; handshake failures and their causes; the gateway's CPU over
   the phase (µs per connection).
2. **Idle**: after a settle, RSS with all stations connected (KB per connection = the difference /
   stations), then the gateway's CPU over ``--idle`` seconds while the stations heartbeat.
3. **Storm**: SIGKILL the gateway and start a new one on the same port at once; the stations notice
   the dead sockets and reconnect with their own backoff and jitter (1 s * 2^attempt * U(0.5, 1), no
   global pacing: ``--storm-connect-rate`` to add one); time from the kill until every station is
   connected and booted again, failures, the new gateway's RSS afterwards.
   **Storm 2** (``--no-mid-storm-kill`` skips it): kill that gateway, start another, and kill it
   too at the first poll (every 25 ms) that sees half the stations booted again, when thousands of
   BootNotifications and StatusNotifications are in flight (the count is reported); then time until
   all are booted on a fourth gateway.
4. **No frame lost, none twice**: the stations record the unique id of every CALL they wrote to
   their socket and of every one that was answered (``SimConfig.record_calls``). The harness reads
   the whole ``OCPP`` stream (headers only) and checks, station by station: every answered CALL is
   stored, nothing stored was never sent, no ``Nats-Msg-Id`` occurs twice, no station CALL is stored
   twice. A CALL written to a socket the kill then destroyed may or may not be stored (the gateway
   died reading it) and is never answered: those are counted, not errors.

``--baseline-src DIR`` first runs the same scenario with the gateway from another source tree
(e.g. ``git archive HEAD | tar -x -C DIR``: ``PYTHONPATH=DIR``), then with this tree, and prints
both with their ratios. ``--profile DIR`` runs a third scenario with py-spy recording the gateway
through the connect phase and the storm (py-spy slows its target: that run's numbers are not
reported) and prints where the gateway's time goes.

Everything shares the machine (2 cores here, and other people's benchmarks): read same-run ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import nats
import psutil
from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from evbus.embedded_nats import embedded_nats, free_port
from evbus.settings import environment
from schemas import subjects

BIN: Final = Path(sys.executable).parent
START_TIMEOUT_S: Final = 60.0
POLL_S: Final = 0.1
SETTLE_S: Final = 5.0  # after every station booted: their StatusNotifications are answered
RSS_TARGET_BYTES: Final = 1 << 30


# --- processes ------------------------------------------------------------------------------------


class Role:
    """``evbus processors`` or ``evbus gateway`` in a process of its own."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
        await self.process.wait()


async def start_role(role: str, env: dict[str, str], log: Path, source: Path | None) -> Role:
    env = dict(env)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "evbus"), role, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env, cwd=log.parent
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        line = (await asyncio.wait_for(process.stdout.readline(), max(remaining, 0.01))).decode()
        if not line:
            raise RuntimeError(f"evbus {role} exited with code {await process.wait()} before it was up; see {log}")
        if line.startswith("NATS: "):
            return Role(role, process)


def role_env(nats_url: str, port: int, data_dir: Path, heartbeat: int) -> dict[str, str]:
    return environment(
        nats_url=nats_url,
        data_dir=data_dir,
        ocpp_host="127.0.0.1",
        ocpp_port=port,
        heartbeat_interval=heartbeat,
        unknown_tokens="accept",
        station_rate=0,  # load generators: the per-station and per-address limits are off
        handshake_rate=0,
    )


class Client:
    """The stations: this module's ``_client`` mode in a process of its own, one JSON line per command."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, args: argparse.Namespace, url: str, calls_out: Path, log: Path) -> Client:
        command = [sys.executable, "-m", "bench.connections", "_client", "--url", url]
        command += ["--stations", str(args.stations), "--protocol", args.protocol, "--calls-out", str(calls_out)]
        if args.connect_rate is not None:
            command += ["--connect-rate", str(args.connect_rate)]
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr
            )
        client = cls(process)
        await client.ask("ready")
        return client

    async def ask(self, command: str, timeout: float = 60.0) -> dict[str, Any]:  # noqa: ASYNC109
        async with self._lock:
            assert self.process.stdin is not None
            assert self.process.stdout is not None
            self.process.stdin.write(command.encode() + b"\n")
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the client exited (code {await self.process.wait()}); see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> dict[str, Any]:
        report = await self.ask("stop", timeout=120)
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.process.wait()
        return report


# --- the scenario ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """Stations reaching ``connected`` and ``booted``: when, at what cost, with which failures."""

    seconds_to_connected: float = float("nan")
    seconds_to_booted: float = float("nan")
    handshake_failures: int = 0
    failure_causes: dict[str, int] = field(default_factory=dict)
    gateway_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    other_cpu_s: dict[str, float] = field(default_factory=dict)  # nats-server, processors
    peak_rss: int = 0

    def rate(self, stations: int) -> float:
        return stations / self.seconds_to_connected if self.seconds_to_connected > 0 else float("nan")


@dataclass(slots=True)
class Result:
    variant: str
    stations: int
    protocol: str
    connect_rate: float | None
    heartbeat_s: int
    rss_before: int = 0
    rss_connected: int = 0
    rss_after_idle: int = 0
    connect: Phase = field(default_factory=Phase)
    idle_seconds: float = 0.0
    idle_gateway_cpu_s: float = 0.0
    idle_cpu_by_process: dict[str, float] = field(default_factory=dict)
    idle_calls_answered: int = 0
    gateway_down_s: float = 0.0
    storm: Phase = field(default_factory=Phase)
    rss_after_storm: int = 0
    storm2: Phase = field(default_factory=Phase)
    storm2_in_flight: int = 0  # CALLs sent and not answered when the second kill came
    frames: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    loadavg: list[float] = field(default_factory=list)
    sim_report: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def kb_per_connection(self) -> float:
        return (self.rss_connected - self.rss_before) / self.stations / 1024

    @property
    def idle_cpu_percent(self) -> float:
        return 100 * self.idle_gateway_cpu_s / self.idle_seconds if self.idle_seconds else float("nan")

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "kbPerConnection": self.kb_per_connection,
            "handshakesPerSecond": self.connect.rate(self.stations),
            "idleCpuPercent": self.idle_cpu_percent,
        }


class Scenario:
    def __init__(self, args: argparse.Namespace, workdir: Path, variant: str, source: Path | None) -> None:
        self.args = args
        self.workdir = workdir / variant
        self.variant = variant
        self.source = source
        self.profile_dir: Path | None = args.profile if variant == "profiled" else None
        self.result = Result(variant, args.stations, args.protocol, args.connect_rate, args.heartbeat)

    async def run(self) -> Result:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args, result = self.args, self.result
        async with embedded_nats(self.workdir / "nats", client_port=0, mqtt_port=0) as server:
            nc = await nats.connect(server.url, name="bench-connections")
            port = free_port()
            env = role_env(server.url, port, self.workdir / "evbus", args.heartbeat)
            (self.workdir / "evbus").mkdir(exist_ok=True)
            processors = await start_role("processors", env, self.workdir / "processors.log", None)
            gateway = await start_role("gateway", env, self.workdir / "gateway.log", self.source)
            others = {"nats-server": psutil.Process(server.process.pid), "processors": psutil.Process(processors.pid)}
            client: Client | None = None
            try:
                await asyncio.sleep(2.0)
                result.rss_before = gateway.rss()
                calls_out = self.workdir / "calls.json"
                client = await Client.start(args, f"ws://127.0.0.1:{port}/ocpp", calls_out, self.workdir / "sim.log")
                log(f"[{self.variant}] gateway RSS {mb(result.rss_before)} before any station; connecting")

                spy = await self._spy(gateway.pid, "connect")
                await client.ask("start")
                result.connect = await self._until_all(client, gateway, others, time.monotonic(), args.connect_timeout)
                await self._spied(spy)
                log(
                    f"[{self.variant}] all {args.stations} connected in {result.connect.seconds_to_connected:.1f} s, "
                    f"booted in {result.connect.seconds_to_booted:.1f} s, "
                    f"{result.connect.handshake_failures} handshake failures"
                )

                await asyncio.sleep(SETTLE_S)
                result.rss_connected = gateway.rss()
                log(f"[{self.variant}] gateway RSS {mb(result.rss_connected)} with all connected; idle window")
                await self._idle(client, gateway, others)
                result.rss_after_idle = gateway.rss()

                if not args.storm:
                    result.sim_report = await client.stop()
                    client = None
                    result.frames, result.problems = await verify(nc, calls_out)
                    return result
                stats = await client.ask(f"gate {args.storm_connect_rate}")
                failures_before, causes_before = stats["handshakeFailures"], Counter(stats["causes"])
                killed = time.monotonic()
                gateway.kill()
                await gateway.process.wait()
                gateway = await start_role("gateway", env, self.workdir / "gateway-2.log", self.source)
                result.gateway_down_s = time.monotonic() - killed
                spy = await self._spy(gateway.pid, "storm")
                result.storm = await self._until_all(
                    client, gateway, others, killed, args.storm_timeout, lost_first=True
                )
                await self._spied(spy)
                final = await client.ask("stats")
                result.storm.handshake_failures = final["handshakeFailures"] - failures_before
                result.storm.failure_causes = dict(Counter(final["causes"]) - causes_before)
                log(
                    f"[{self.variant}] storm: new gateway up after {result.gateway_down_s:.1f} s, all reconnected "
                    f"{result.storm.seconds_to_connected:.1f} s and booted {result.storm.seconds_to_booted:.1f} s "
                    f"after the kill, {result.storm.handshake_failures} failed attempts"
                )
                await asyncio.sleep(SETTLE_S)
                result.rss_after_storm = gateway.rss()
                if args.mid_storm_kill:
                    gateway = await self._mid_storm_kill(client, gateway, others, env)

                result.sim_report = await client.stop()
                client = None
                result.frames, result.problems = await verify(nc, calls_out)
                result.loadavg = [round(x, 2) for x in os.getloadavg()]
            finally:
                if client is not None:
                    client.process.kill()
                    await client.process.wait()
                await gateway.stop()
                await processors.stop()
                await nc.close()
        return result

    async def _mid_storm_kill(
        self, client: Client, gateway: Role, others: dict[str, psutil.Process], env: dict[str, str]
    ) -> Role:
        """Storm 2: kill, restart, and kill again at the first poll that sees half the stations
        booted on the new gateway, when thousands of Boot- and StatusNotifications are in flight."""
        n, result = self.args.stations, self.result
        gateway.kill()
        await gateway.process.wait()
        gateway = await start_role("gateway", env, self.workdir / "gateway-3.log", self.source)
        t0 = time.monotonic()
        lost = False
        while True:
            stats = await client.ask("stats")
            lost = lost or stats["booted"] <= n // 10  # (nearly) every station noticed the first kill
            if lost and stats["booted"] >= n // 2:
                break
            if time.monotonic() - t0 > self.args.storm_timeout:
                raise RuntimeError(f"{self.variant}: storm 2 never reached {n // 2} booted stations")
            await asyncio.sleep(POLL_S / 4)
        result.storm2_in_flight = stats["sent"] - stats["answered"]
        failures_before = stats["handshakeFailures"]
        killed = time.monotonic()
        gateway.kill()
        await gateway.process.wait()
        gateway = await start_role("gateway", env, self.workdir / "gateway-4.log", self.source)
        result.storm2 = await self._until_all(client, gateway, others, killed, self.args.storm_timeout, lost_first=True)
        result.storm2.handshake_failures = (await client.ask("stats"))["handshakeFailures"] - failures_before
        log(
            f"[{self.variant}] storm 2: killed again at {stats['booted']} booted with {result.storm2_in_flight} CALLs "
            f"in flight; all booted {result.storm2.seconds_to_booted:.1f} s after that kill"
        )
        return gateway

    async def _until_all(
        self,
        client: Client,
        gateway: Role,
        others: dict[str, psutil.Process],
        t0: float,
        limit_s: float,
        *,
        lost_first: bool = False,
    ) -> Phase:
        """Poll the client until every station is connected and booted (after all were lost, if asked)."""
        n = self.args.stations
        phase = Phase()
        gateway_cpu0, client_cpu0 = gateway.cpu(), client.cpu()
        others0 = {name: _cpu(p) for name, p in others.items()}
        start = await client.ask("stats")
        failures0, causes0 = start["handshakeFailures"], Counter(start["causes"])
        lost = not lost_first
        connected_at: float | None = None
        while True:
            stats = await client.ask("stats")
            now = time.monotonic() - t0
            with contextlib.suppress(psutil.NoSuchProcess):
                phase.peak_rss = max(phase.peak_rss, gateway.rss())
            if not lost:
                lost = stats["booted"] < n  # the stations noticed the kill
            elif connected_at is None and stats["connected"] >= n:
                connected_at = now
            if lost and stats["booted"] >= n:
                phase.seconds_to_booted = now
                break
            if now > limit_s:
                raise RuntimeError(
                    f"{self.variant}: {stats['connected']} connected, {stats['booted']} booted after {limit_s} s"
                )
            await asyncio.sleep(POLL_S)
        phase.seconds_to_connected = now if connected_at is None else connected_at
        phase.gateway_cpu_s = gateway.cpu() - gateway_cpu0
        phase.client_cpu_s = client.cpu() - client_cpu0
        phase.other_cpu_s = {name: _cpu(p) - others0[name] for name, p in others.items()}
        phase.handshake_failures = stats["handshakeFailures"] - failures0
        phase.failure_causes = dict(Counter(stats["causes"]) - causes0)
        return phase

    async def _idle(self, client: Client, gateway: Role, others: dict[str, psutil.Process]) -> None:
        result = self.result
        before = await client.ask("stats")
        cpu0 = {name: _cpu(p) for name, p in others.items()}
        spy = await self._spy(gateway.pid, "idle")
        gateway0, t0 = gateway.cpu(), time.monotonic()
        await asyncio.sleep(self.args.idle)
        gateway1, t1 = gateway.cpu(), time.monotonic()
        await self._spied(spy)
        cpu1 = {name: _cpu(p) for name, p in others.items()}
        after = await client.ask("stats")
        result.idle_seconds = t1 - t0
        result.idle_gateway_cpu_s = gateway1 - gateway0
        result.idle_cpu_by_process = {"gateway": gateway1 - gateway0} | {n: cpu1[n] - cpu0[n] for n in cpu0}
        result.idle_calls_answered = after["answered"] - before["answered"]
        if after["booted"] < self.args.stations:
            result.problems.append(f"only {after['booted']} stations booted at the end of the idle window")

    async def _spy(self, pid: int, phase: str) -> asyncio.subprocess.Process | None:
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        raw = self.profile_dir / f"{phase}.raw"
        command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(self.args.profile_seconds)]
        command += ["--rate", "100", "--format", "raw", "--nolineno", "-o", str(raw)]
        with (self.workdir / "py-spy.log").open("ab") as spy_log:
            return await asyncio.create_subprocess_exec(*command, stdout=spy_log, stderr=spy_log)

    async def _spied(self, spy: asyncio.subprocess.Process | None) -> None:
        if spy is None or self.profile_dir is None:
            return
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        await spy.wait()
        for raw in self.profile_dir.glob("*.raw"):
            if raw.stem not in self.result.profiles:
                self.result.profiles[raw.stem] = summarise(raw.read_text())


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


# --- frames: sent vs stored -----------------------------------------------------------------------


class _Sent(msgspec.Struct):
    sent: list[str]
    answered: list[str]


async def verify(nc: NATS, calls_out: Path) -> tuple[dict[str, int], list[str]]:
    """Compare what the stations sent and got answered with what the OCPP stream holds."""
    ledger = msgspec.json.decode(await asyncio.to_thread(calls_out.read_bytes), type=dict[str, _Sent])
    js = nc.jetstream()
    info = await js.stream_info(subjects.STREAM_OCPP)
    last = info.state.last_seq
    msg_ids: Counter[str] = Counter()
    stored: dict[str, Counter[str]] = {}
    messages = 0
    if last:
        sub = await js.subscribe(
            subjects.OCPP_ALL,
            stream=subjects.STREAM_OCPP,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            headers_only=True,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                messages += 1
                headers = msg.headers or {}
                msg_ids[headers.get(subjects.H_MSG_ID, "")] += 1
                if headers.get(subjects.H_DIRECTION) == "in" and headers.get(subjects.H_TYPE) == "CALL":
                    station = headers.get(subjects.H_STATION, "")
                    stored.setdefault(station, Counter())[headers.get(subjects.H_ID, "")] += 1
                if msg.metadata.sequence.stream >= last:
                    break
        finally:
            await sub.unsubscribe()
    sent = answered = in_stream = lost = phantom = duplicates = in_flight_stored = in_flight_dropped = 0
    problems: list[str] = []
    for station, calls in ledger.items():
        held = stored.get(station, Counter())
        sent_ids, answered_ids = set(calls.sent), set(calls.answered)
        sent += len(calls.sent)
        answered += len(calls.answered)
        in_stream += sum(held.values())
        duplicates += sum(n - 1 for n in held.values() if n > 1)
        missing = answered_ids - held.keys()
        lost += len(missing)
        unknown = held.keys() - sent_ids
        phantom += len(unknown)
        unanswered = sent_ids - answered_ids
        in_flight_stored += len(unanswered & held.keys())
        in_flight_dropped += len(unanswered - held.keys())
        if missing and len(problems) < 10:
            problems.append(f"{station}: answered but not stored: {sorted(missing)[:5]}")
        if unknown and len(problems) < 10:
            problems.append(f"{station}: stored but never sent: {sorted(unknown)[:5]}")
    duplicate_msg_ids = sum(n - 1 for n in msg_ids.values() if n > 1)
    if duplicate_msg_ids:
        problems.append(f"{duplicate_msg_ids} Nats-Msg-Id stored more than once")
    if duplicates:
        problems.append(f"{duplicates} station CALLs stored more than once")
    frames = {
        "streamMessages": messages,
        "callsSent": sent,
        "callsAnswered": answered,
        "callsStored": in_stream,
        "answeredNotStored": lost,
        "storedNeverSent": phantom,
        "sentUnansweredStored": in_flight_stored,
        "sentUnansweredNotStored": in_flight_dropped,
        "duplicateMsgIds": duplicate_msg_ids,
        "duplicateCalls": duplicates,
    }
    return frames, problems


# --- py-spy summary -------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")
IDLE_LEAVES: Final = ("Condition.wait", "_worker", "select (selectors.py)")


def summarise(raw: str, top: int = 20) -> dict[str, Any]:
    """Own (leaf) and inclusive sample shares per function from py-spy's ``--format raw``."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for text in filter(None, stack.strip().split(";")):
            match = _FRAME.match(text)
            name, file = (match["name"], match["file"]) if match else (text, "")
            frames.append(f"{name} ({_short(file)})")
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            continue
        busy += count
        own[frames[-1]] += count
        for key in set(frames[1:]):
            inclusive[key] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(key, round(100 * n / busy, 1)) for key, n in counter.most_common(top)] if busy else []

    return {"samples": busy, "own": shares(own), "inclusive": shares(inclusive)}


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# --- the client process ---------------------------------------------------------------------------


async def client_main(argv: list[str]) -> None:
    """The stations, driven over stdin: ``ready``, ``start``, ``stats``, ``gate RATE|none``, ``stop``."""
    import logging

    from evbus.sim import SimConfig, Simulator
    from evbus.sim.simulator import ConnectGate

    parser = argparse.ArgumentParser(prog="bench.connections _client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--stations", type=int, required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--connect-rate", type=float)
    parser.add_argument("--calls-out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimConfig(
        url=args.url,
        stations=args.stations,
        protocol=args.protocol,
        mode="idle",
        connect_rate=args.connect_rate,
        record_calls=True,
    )
    sim = Simulator(config)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(value: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    while line := (await reader.readline()).decode().strip():
        command, _, argument = line.partition(" ")
        if command == "ready":
            reply({"ok": True})
        elif command == "start":
            await sim.start()
            reply({"ok": True})
        elif command == "gate":
            sim.gate = ConnectGate(None if argument == "None" else float(argument))
            reply(_client_stats(sim))
        elif command == "stats":
            reply(_client_stats(sim))
        elif command == "stop":
            report = await sim.stop()
            args.calls_out.write_bytes(msgspec.json.encode(sim.call_log()))
            reply(report.to_dict() | {"handshakeCauses": dict(sim.stats.handshake_causes)})
            return


def _client_stats(sim: Any) -> dict[str, Any]:
    stats = sim.stats
    sent = answered = 0
    for station in sim.stations:
        if station.call_log is not None:
            sent += len(station.call_log.sent)
            answered += len(station.call_log.answered)
    return {
        "connected": stats.connected,
        "booted": stats.booted,
        "reconnects": stats.reconnects,
        "disconnects": stats.disconnects,
        "timeouts": stats.timeouts,
        "callErrors": stats.call_errors,
        "handshakeFailures": stats.handshake_failures,
        "causes": dict(stats.handshake_causes),
        "sent": sent,
        "answered": answered,
    }


# --- output ---------------------------------------------------------------------------------------


def log(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {text}", file=sys.stderr, flush=True)


def mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def table(results: list[Result]) -> str:
    head = "| | " + " | ".join(r.variant for r in results) + (" | ratio |" if len(results) == 2 else " |")
    lines = [head, "|---|" + "---:|" * (len(results) + (len(results) == 2))]

    def row(label: str, values: list[float], fmt: str, ratio: bool = True) -> None:
        cells = [format(v, fmt) for v in values]
        if len(values) == 2:
            cells.append(f"{values[1] / values[0]:.2f}x" if ratio and values[0] else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def causes(phase: Phase) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(phase.failure_causes.items(), key=lambda kv: -kv[1])) or "-"

    n = results[0].stations
    row("stations", [r.stations for r in results], "d", ratio=False)
    row("gateway RSS before any station, MB", [r.rss_before / 2**20 for r in results], ".0f")
    row(f"gateway RSS, {n} connected, MB", [r.rss_connected / 2**20 for r in results], ".0f")
    row("KB per connection", [r.kb_per_connection for r in results], ".1f")
    row("connect: seconds until all connected", [r.connect.seconds_to_connected for r in results], ".1f")
    row("connect: handshakes/s", [r.connect.rate(r.stations) for r in results], ".0f")
    row("connect: seconds until all booted", [r.connect.seconds_to_booted for r in results], ".1f")
    row("connect: failed handshakes", [r.connect.handshake_failures for r in results], "d", ratio=False)
    lines.append("| connect: failure causes | " + " | ".join(causes(r.connect) for r in results) + " |")
    row("connect: gateway CPU µs per connection", [r.connect.gateway_cpu_s / r.stations * 1e6 for r in results], ".0f")
    row(
        "connect: sim (client) CPU µs per connection",
        [r.connect.client_cpu_s / r.stations * 1e6 for r in results],
        ".0f",
    )
    row(
        "connect: processors CPU µs per connection",
        [r.connect.other_cpu_s.get("processors", 0) / r.stations * 1e6 for r in results],
        ".0f",
    )
    row("connect: gateway peak RSS, MB", [r.connect.peak_rss / 2**20 for r in results], ".0f")
    row("idle: window, s", [r.idle_seconds for r in results], ".0f", ratio=False)
    row("idle: CALLs answered in the window (heartbeats)", [r.idle_calls_answered for r in results], "d", ratio=False)
    row("idle: gateway CPU, % of a core", [r.idle_cpu_percent for r in results], ".1f")
    row("idle: nats-server CPU, % of a core", [_share(r, "nats-server") for r in results], ".1f")
    row("idle: processors CPU, % of a core", [_share(r, "processors") for r in results], ".1f")
    row("storm: gateway down (kill → new one listening), s", [r.gateway_down_s for r in results], ".1f")
    row("storm: kill → all reconnected, s", [r.storm.seconds_to_connected for r in results], ".1f")
    row("storm: kill → all booted, s", [r.storm.seconds_to_booted for r in results], ".1f")
    row("storm: failed connection attempts", [r.storm.handshake_failures for r in results], "d", ratio=False)
    lines.append("| storm: failure causes | " + " | ".join(causes(r.storm) for r in results) + " |")
    row("storm: new gateway CPU until all booted, s", [r.storm.gateway_cpu_s for r in results], ".1f")
    row("storm: sim (client) CPU until all booted, s", [r.storm.client_cpu_s for r in results], ".1f")
    row("storm: processors CPU until all booted, s", [r.storm.other_cpu_s.get("processors", 0) for r in results], ".1f")
    row("storm: new gateway RSS after, MB", [r.rss_after_storm / 2**20 for r in results], ".0f")
    row("storm 2: CALLs in flight at the second kill", [r.storm2_in_flight for r in results], "d", ratio=False)
    row("storm 2: second kill → all booted, s", [r.storm2.seconds_to_booted for r in results], ".1f")
    row("storm 2: failed connection attempts", [r.storm2.handshake_failures for r in results], "d", ratio=False)
    for key, label in (
        ("callsSent", "CALLs sent by the stations"),
        ("callsAnswered", "CALLs answered"),
        ("callsStored", "station CALLs stored"),
        ("answeredNotStored", "answered but not stored (lost)"),
        ("storedNeverSent", "stored but never sent"),
        ("sentUnansweredStored", "sent, unanswered (kill), stored"),
        ("sentUnansweredNotStored", "sent, unanswered (kill), not stored"),
        ("duplicateMsgIds", "Nats-Msg-Id stored twice"),
        ("duplicateCalls", "station CALL stored twice"),
        ("streamMessages", "OCPP stream messages"),
    ):
        row(f"frames: {label}", [r.frames.get(key, 0) for r in results], "d", ratio=False)
    lines.append("| load average (1 min) at the end | " + " | ".join(str(r.loadavg[:1]) for r in results) + " |")
    return "\n".join(lines)


def _share(result: Result, name: str) -> float:
    seconds = result.idle_cpu_by_process.get(name, 0.0)
    return 100 * seconds / result.idle_seconds if result.idle_seconds else float("nan")


def print_profile(name: str, summary: dict[str, Any]) -> None:
    print(f"\n### py-spy, gateway, {name} ({summary['samples']} busy samples at 100 Hz)\n")
    print("| own (leaf) | % | inclusive | % |\n|---|---:|---|---:|")
    own, inclusive = summary["own"], summary["inclusive"]
    for i in range(max(len(own), len(inclusive))):
        a = own[i] if i < len(own) else ("", "")
        b = inclusive[i] if i < len(inclusive) else ("", "")
        print(f"| {a[0]} | {a[1]} | {b[0]} | {b[1]} |")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--protocol", default="ocpp1.6", choices=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
    parser.add_argument(
        "--connect-rate",
        type=float,
        help="new connections/s of the sim (default: as fast as accepted, 100 handshakes in flight; 0: all at once)",
    )
    parser.add_argument(
        "--storm-connect-rate",
        default="0",
        help="the sim's pacing during the storm: 0 (default) none, each station on its own backoff; None: 100 in "
        "flight; or connections/s",
    )
    parser.add_argument("--heartbeat", type=int, default=60, help="EVBUS_HEARTBEAT_INTERVAL, seconds (default 60)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of the idle CPU window (default 60)")
    parser.add_argument("--no-storm", dest="storm", action="store_false", help="stop after the idle window")
    parser.add_argument(
        "--no-mid-storm-kill",
        dest="mid_storm_kill",
        action="store_false",
        help="skip storm 2 (the gateway killed again while half the stations are booting)",
    )
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--storm-timeout", type=float, default=300.0)
    parser.add_argument("--baseline-src", type=Path, help="also run the gateway from this source tree first")
    parser.add_argument("--profile", type=Path, help="run once more with py-spy on the gateway; raw files here")
    parser.add_argument("--profile-only", action="store_true", help="only the profiled run (needs --profile)")
    parser.add_argument("--profile-seconds", type=int, default=30, help="py-spy's limit per phase (default 30)")
    parser.add_argument("--json-out", type=Path, help="write every result as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep logs and data here (default: a temporary directory)")
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace, workdir: Path) -> list[Result]:
    variants: list[tuple[str, Path | None]] = []
    if args.baseline_src:
        variants.append(("baseline", args.baseline_src.resolve()))
    variants.append(("current", None))
    if args.profile_only:
        variants = []
    if args.profile or args.profile_only:
        variants.append(("profiled", None))
    results = []
    for name, source in variants:
        results.append(await Scenario(args, workdir, name, source).run())
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_client"]:
        import uvloop

        uvloop.run(client_main(argv[1:]))
        return 0
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-connections-"))
    log(f"workdir {workdir}; {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    try:
        results = asyncio.run(measure(args, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    reported = [r for r in results if r.variant != "profiled"]
    print(f"\n## Connection capacity: {args.stations} stations, {args.protocol}, heartbeat {args.heartbeat} s\n")
    if reported:
        print(table(reported))
    for r in results:
        for phase, summary in r.profiles.items():
            print_profile(phase, summary)
    if args.json_out:
        args.json_out.write_text(json.dumps([r.as_json() for r in results], indent=2, default=str))
    failed = False
    for r in reported:
        for problem in r.problems:
            print(f"PROBLEM ({r.variant}): {problem}")
            failed = True
        verdict = "met" if r.rss_connected < RSS_TARGET_BYTES else "MISSED"
        print(f"{r.variant}: RSS target (< 1 GB with {r.stations} connected): {verdict}")
        lost = r.frames.get("answeredNotStored", 0) + r.frames.get("duplicateMsgIds", 0)
        print(f"{r.variant}: storm without a lost or doubled frame: {'met' if not lost else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
