"""Round trips: server CPU per OCPP round trip, evbus beside three reference servers, in one run.

    .venv/bin/python -m bench.roundtrip [--stations 50] [--duration 20] [--protocol ocpp1.6]
        [--servers bare,floor,ocpp-lib,evbus] [--rate 0] [--rounds 1] [--json-out results.json]
        [--profile /tmp/evbus-profile.txt]

Servers, each its own process (tree), started fresh for each round:

- ``bare``: :mod:`bench.servers.bare` — websockets + msgspec, answers, stores nothing;
- ``floor``: :mod:`bench.servers.floor` — bare plus both frames stored in JetStream, both acks
  awaited, its own nats-server child with the evbus streams: the least evbus could cost;
- ``ocpp-lib``: :mod:`bench.servers.ocpp_lib` — the mobilityhouse ``ocpp`` library's ChargePoint
  with ``@on`` handlers, no persistence: what a Python user would write instead;
- ``evbus``: ``evbus up`` (embedded nats-server, gateway, processor, projection and API), free
  ports, a fresh data directory.

A ``:loop`` suffix picks the event loop (``evbus:asyncio``, ``ocpp-lib:uvloop``): evbus reads
``EVBUS_EVENT_LOOP``, the others ``--loop``. Defaults: uvloop for evbus (its default) and for bare
and floor (so the floor shares evbus's loop); asyncio for ocpp-lib (``asyncio.run`` as its README).

The load is ``evbus sim --mode roundtrip`` (``--sim-command`` for another client with the same
command line), a separate process whose CPU is not counted: every station boots, then sends
Heartbeat, StatusNotification, MeterValues in rotation, each after the previous answer.

Per server: a warm-up (one station, ``--warmup`` seconds, rate 0, a few hundred round trips at
least: a cold server costs ~40 % more CPU per round trip), then the burst. **How the CPU window is
cut:** the harness starts the burst's sim, waits until the server has answered ``--stations``
more BootNotifications (every station is connected and booted), waits ``SETTLE_S`` more (the
stations report their connectors, then start their round trips), then takes (answer count, CPU of
the server's whole process tree), sleeps ``--duration``, and takes them again. CPU per round trip
is the CPU difference divided by the answers in between, counted by the server: the bench servers count
the answers they sent (read over their stdin/stdout), evbus the answers stored in its ``OCPP``
stream (``ocpp.*.out.>``, read with one STREAM.INFO request; evbus stores every answer before it
sends it). Handshakes, boots and the sim's shutdown lie outside the window. The sim runs
``--boot-allowance`` + ``--duration`` + 1 s, so it is still at full load when the window closes
(checked). CPU is user + system of the server process and all its descendants (``bench.cpu``);
a process appearing or vanishing in the window is an error. Latencies are the sim's, over its
whole run. The sim's own CPU in the window is shown too ("client cores"), to see whether the client
or the server set the pace.

By default every server runs flat out, so each is measured at the rate it reaches. CPU per round
trip falls as the rate rises (more work per wake-up, fuller batches), which favours the faster
servers; ``--rate R`` runs every burst at the same R round trips/s for an equal-load comparison.

For each evbus variant a second burst runs at half the round-trip rate that variant reached
(``--rate`` of the sim): its p99 is the figure to hold under 10 ms. ``--profile`` adds a third
evbus burst with py-spy recording the evbus process (py-spy's sampling slows the target, so that
burst's numbers are not reported) and prints where evbus's CPU goes.

Everything shares the machine (2 cores here, other people's jobs too): read the same-run ratios.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import nats
import psutil
from nats.aio.client import Client as NATS

from bench import cpu
from evbus.settings import environment

BIN: Final = Path(sys.executable).parent
KINDS: Final = ("bare", "floor", "ocpp-lib", "evbus")
MODULES: Final = {"bare": "bench.servers.bare", "floor": "bench.servers.floor", "ocpp-lib": "bench.servers.ocpp_lib"}
DEFAULT_LOOP: Final = {"bare": "uvloop", "floor": "uvloop", "ocpp-lib": "asyncio", "evbus": "uvloop"}
LOOPS: Final = ("uvloop", "asyncio")
SETTLE_S: Final = 1.0  # after every station has booted (and reports its connectors), before the window opens
TAIL_S: Final = 1.0  # the sim runs this much past the window's planned end
START_TIMEOUT_S: Final = 60.0
P99_TARGET_MS: Final = 10.0
TARGETS: Final = {"floor": 1.3, "ocpp-lib": 1.0}  # evbus CPU per round trip at most this many times theirs


# --- servers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    kind: str
    loop: str

    @property
    def name(self) -> str:
        return self.kind if self.loop == DEFAULT_LOOP[self.kind] else f"{self.kind}:{self.loop}"

    @classmethod
    def parse(cls, text: str) -> Variant:
        kind, _, loop = text.strip().partition(":")
        if kind not in KINDS or (loop and loop not in LOOPS):
            choices = f"{', '.join(KINDS)}, optionally :uvloop or :asyncio"
            raise argparse.ArgumentTypeError(f"unknown server {text!r}: use {choices}")
        return cls(kind, loop or DEFAULT_LOOP[kind])


class Server(abc.ABC):
    """A running server process: its websocket URL and a count of the answers it has sent."""

    def __init__(self, variant: Variant, process: asyncio.subprocess.Process, url: str) -> None:
        self.variant = variant
        self.process = process
        self.url = url

    @property
    def pid(self) -> int:
        return self.process.pid

    @abc.abstractmethod
    async def answered(self) -> tuple[int, int]:
        """(answers sent so far, how many of them to BootNotifications)."""

    async def stop(self) -> None:
        try:
            descendants = cpu.sample(self.pid).seconds.keys() - {self.pid}
        except psutil.NoSuchProcess:
            descendants = set()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        for pid in descendants:  # a nats-server its parent failed to stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class BenchServer(Server):
    """One of bench/servers: answers ``count`` on stdin with ``count N`` on stdout."""

    async def answered(self) -> tuple[int, int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"count\n")
        await self.process.stdin.drain()
        line = (await asyncio.wait_for(self.process.stdout.readline(), 10)).decode()
        if not line.startswith("count "):
            raise RuntimeError(f"{self.variant.name}: unexpected control answer {line!r}")
        _, answers, boots = line.split()
        return int(answers), int(boots)

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        await super().stop()


class EvbusServer(Server):
    """``evbus up``: answers are counted in its OCPP stream, where each is stored before it is sent."""

    def __init__(self, variant: Variant, process: asyncio.subprocess.Process, url: str, nc: NATS) -> None:
        super().__init__(variant, process, url)
        self.nc = nc
        self.js = nc.jetstream()

    async def answered(self) -> tuple[int, int]:
        info = await self.js.stream_info("OCPP", subjects_filter="ocpp.*.out.>")
        counts = info.state.subjects or {}
        boots = sum(n for subject, n in counts.items() if subject.endswith(".out.BootNotification"))
        return sum(counts.values()), boots

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.close()
        await super().stop()


async def start(variant: Variant, workdir: Path) -> Server:
    logs = (workdir / f"{variant.name.replace(':', '-')}.log").open("ab")
    try:
        if variant.kind == "evbus":
            return await _start_evbus(variant, workdir, logs)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MODULES[variant.kind],
            "--port",
            "0",
            "--loop",
            variant.loop,
            "--data-dir",
            str(workdir),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=logs,
        )
        lines = await _lines_until(process, variant, ("listening ",))
        return BenchServer(variant, process, lines["listening "].split()[1])
    finally:
        logs.close()


async def _start_evbus(variant: Variant, workdir: Path, logs: Any) -> Server:
    data_dir = workdir / f"evbus-data-{secrets.token_hex(3)}"
    env = environment(
        data_dir=data_dir,
        nats_port=0,
        mqtt_port=0,
        ocpp_port=0,
        ocpp_host="127.0.0.1",
        station_rate=0,  # load generators: the per-station and per-address limits are off
        handshake_rate=0,
        api_port=0,
        api_token=secrets.token_urlsafe(24),
        event_loop=variant.loop,
    )
    process = await asyncio.create_subprocess_exec(
        str(BIN / "evbus"), "up", stdout=asyncio.subprocess.PIPE, stderr=logs, env=env, cwd=workdir
    )
    lines = await _lines_until(process, variant, ("evbus is up", "NATS: "))
    url = re.search(r"ws://\S+/ocpp", lines["evbus is up"])
    nats_url = lines["NATS: "].split()[1]
    if url is None:
        raise RuntimeError(f"evbus printed no websocket URL: {lines['evbus is up']!r}")
    return EvbusServer(variant, process, url.group(0), await nats.connect(nats_url, name="bench-roundtrip"))


async def _lines_until(
    process: asyncio.subprocess.Process, variant: Variant, prefixes: tuple[str, ...]
) -> dict[str, str]:
    """Read stdout until a line starting with each prefix was seen; those lines by prefix."""
    assert process.stdout is not None
    found: dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(found) < len(prefixes):
        remaining = deadline - time.monotonic()
        line = (await asyncio.wait_for(process.stdout.readline(), max(remaining, 0.01))).decode()
        if not line:
            raise RuntimeError(f"{variant.name} exited before it was up (code {await process.wait()}); see its log")
        for prefix in prefixes:
            if prefix in line and prefix not in found:
                found[prefix] = line.strip()
    return found


# --- the load -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Burst:
    server: str
    loop: str
    stations: int
    protocol: str
    rate: float  # requested round trips/s, 0 = as fast as possible
    window_s: float
    round_trips: int  # answered inside the window
    cpu_s: float  # server process tree, inside the window
    cpu_by_process: dict[str, float]
    client_cpu_s: float  # the sim, inside the window (not part of the result)
    loadavg: float
    sim: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_us_per_rt(self) -> float:
        return self.cpu_s / self.round_trips * 1e6 if self.round_trips else float("nan")

    @property
    def rt_per_s(self) -> float:
        return self.round_trips / self.window_s

    def latency(self, key: str) -> float:
        return float(self.sim.get("latencyMs", {}).get(key) or float("nan"))

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"cpuUsPerRoundTrip": self.cpu_us_per_rt, "roundTripsPerSecond": self.rt_per_s}


def sim_command(args: argparse.Namespace, url: str, stations: int, duration: float, rate: float) -> list[str]:
    return [
        *shlex.split(args.sim_command),
        "--url",
        url,
        "--stations",
        str(stations),
        "--protocol",
        args.protocol,
        "--duration",
        f"{duration:g}",
        "--mode",
        "roundtrip",
        "--rate",
        f"{rate:g}",
        "--json",
    ]


async def run_sim(command: list[str], log: Path) -> tuple[asyncio.subprocess.Process, asyncio.Task[bytes]]:
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=stderr)

    async def output() -> bytes:
        out, _ = await process.communicate()
        return out

    return process, asyncio.create_task(output())


def sim_result(process: asyncio.subprocess.Process, out: bytes, log: Path) -> dict[str, Any]:
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"the sim (exit {process.returncode}) printed no JSON last line; see {log}") from None
    if not isinstance(result, dict):
        raise RuntimeError(f"the sim's last line is not a JSON object: {lines[-1]!r}")
    return result


async def warm_up(server: Server, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    log = workdir / "sim.log"
    process, output = await run_sim(sim_command(args, server.url, 1, args.warmup, 0), log)
    return sim_result(process, await output, log)


async def burst(
    server: Server,
    args: argparse.Namespace,
    workdir: Path,
    rate: float = 0,
    during: Callable[[], Awaitable[object]] | None = None,
) -> Burst:
    """One burst of ``args.stations`` stations; ``during`` is started as the CPU window opens."""
    log = workdir / "sim.log"
    command = sim_command(args, server.url, args.stations, args.boot_allowance + args.duration + TAIL_S, rate)
    launched = time.monotonic()
    process, output = await run_sim(command, log)
    _, boots = await server.answered()
    while (await server.answered())[1] - boots < args.stations:
        if process.returncode is not None or time.monotonic() - launched > args.boot_allowance:
            exited = process.returncode
            if exited is None:
                process.kill()
            await output
            tail = (await asyncio.to_thread(log.read_text, errors="replace")).strip().splitlines()[-1:]
            reason = f"the sim exited with code {exited}" if exited is not None else "timed out"
            raise RuntimeError(
                f"{server.variant.name}: the stations did not all boot within {args.boot_allowance} s ({reason}); "
                f"see {log}: {tail}"
            )
        await asyncio.sleep(0.05)
    await asyncio.sleep(SETTLE_S)

    count0, _ = await server.answered()
    cpu0, client0, t0 = cpu.sample(server.pid), cpu.sample(process.pid), time.perf_counter()
    if during is not None:
        await during()
    await asyncio.sleep(args.duration - (time.perf_counter() - t0))
    count1, _ = await server.answered()
    cpu1, client1, t1 = cpu.sample(server.pid), cpu.sample(process.pid), time.perf_counter()

    if process.returncode is not None:
        raise RuntimeError(f"{server.variant.name}: the sim ended inside the window; raise --boot-allowance")
    spent = cpu.spent(cpu0, cpu1)
    if spent.changed:
        raise RuntimeError(f"{server.variant.name}: processes {sorted(spent.changed)} came or went in the window")
    result = sim_result(process, await asyncio.wait_for(output, args.boot_allowance + args.duration + 60), log)
    return Burst(
        server=server.variant.name,
        loop=server.variant.loop,
        stations=args.stations,
        protocol=args.protocol,
        rate=rate,
        window_s=t1 - t0,
        round_trips=count1 - count0,
        cpu_s=spent.total,
        cpu_by_process=spent.by_name,
        client_cpu_s=cpu.spent(client0, client1).total,
        loadavg=os.getloadavg()[0],
        sim=result,
    )


async def profiled_burst(server: Server, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A full-speed burst with py-spy recording evbus through its window; the profile's summary."""
    raw: Path = args.profile
    spy_args = ["record", "--pid", str(server.pid), "--duration", str(round(args.duration)), "--rate", "100"]
    spy_args += ["--format", "raw", "--nolineno", "--full-filenames", "-o", str(raw)]
    started: list[tuple[asyncio.subprocess.Process, float]] = []

    async def record() -> None:
        with (workdir / "py-spy.log").open("ab") as spy_log:
            spy = await asyncio.create_subprocess_exec(str(BIN / "py-spy"), *spy_args, stdout=spy_log, stderr=spy_log)
        started.append((spy, cpu.sample(server.pid).seconds[server.pid]))

    measured = await burst(server, args, workdir, during=record)
    spy, cpu_before = started[0]
    await spy.wait()
    python_cpu = cpu.sample(server.pid).seconds[server.pid] - cpu_before
    text = await asyncio.to_thread(raw.read_text)
    return summarise_profile(text, python_cpu) | {"burst": measured.as_json(), "rawFile": str(raw)}


# --- profile summary ----------------------------------------------------------------------------

# py-spy counts some blocked threads as busy (a thread pool or log listener waiting on its queue):
# those samples are left out of every percentage.
IDLE_LEAVES: Final = {("Condition.wait", "threading.py"), ("_worker", "concurrent/futures/thread.py")}
# the leaf frame says less than its caller about what the CPU does in these
LEAF_CATEGORIES: Final = {
    ("apply", "projections/fold.py"): "DuckDB: the projection's fold statements (native, in a thread)",
    ("Runner.run", "asyncio/runners.py"): "event loop internals (uvloop C: callbacks, socket reads/writes)",
    ("StreamWriter.writelines", "asyncio/streams.py"): "socket writes of nats-py's flusher",
}
CATEGORIES: Final = (  # by the leaf frame's file; the first match wins
    ("websockets/", "websockets (framing, protocol)"),
    ("/nats/js/", "nats-py JetStream API"),
    ("/nats/", "nats-py (protocol parser, headers, publish, subscriptions)"),
    ("faststream/", "FastStream"),
    ("msgspec", "msgspec"),
    ("/json/", "stdlib json"),
    ("jsonschema", "JSON schema validation"),
    ("duckdb", "DuckDB"),
    ("pyarrow", "pyarrow"),
    ("/projections/", "evbus projections (batching, runner)"),
    ("/gateways/", "evbus gateway code"),
    ("/processors/", "evbus processor code"),
    ("/schemas/", "evbus schemas (subjects, OCPP-J parsing, validation)"),
    ("/api/", "evbus API"),
    ("litestar", "Litestar/uvicorn"),
    ("uvicorn", "Litestar/uvicorn"),
    ("/evbus/", "evbus core (publishing, clock, kv)"),
    ("/logging/", "logging"),
    ("uvloop", "event loop (asyncio/uvloop Python parts)"),
    ("/asyncio/", "event loop (asyncio/uvloop Python parts)"),
    ("/uuid.py", "stdlib other"),
    ("/datetime.py", "stdlib other"),
    ("/queue.py", "stdlib other"),
    ("/threading.py", "stdlib other"),
)
ROLES: Final = (  # the first rule any frame of the stack matches; FastStream runs the processor's handler
    ("/projections/fold.py", "projection: DuckDB fold"),
    ("/gateways/", "gateway"),
    ("/processors/", "processor (FastStream included)"),
    ("faststream/", "processor (FastStream included)"),
    ("/projections/", "projection: taking frames in, batching"),
    ("/api/", "API"),
    ("litestar", "API"),
    ("uvicorn", "API"),
    ("/evbus/kv.py", "KV mirrors"),
    ("/logging/", "logging (the queue listener thread)"),
)
ROOT_FRAMES: Final = frozenset(
    {"<module>", "main", "run", "Runner.run", "Thread.run", "Thread._bootstrap", "Thread._bootstrap_inner"}
    | {"_worker", "_WorkItem.run"}
)
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")


def _leaf_category(name: str, file: str) -> str:
    for (leaf, where), label in LEAF_CATEGORIES.items():
        if name == leaf and file.endswith(where):
            return label
    for needle, label in CATEGORIES:
        if needle in file:
            return label
    return "other"


def _role(frames: list[tuple[str, str]]) -> str:
    for needle, role in ROLES:
        if any(needle in file for _, file in frames):
            return role
    names = {name for name, _ in frames}
    if "Client._read_loop" in names:
        return "nats-py read loop (parsing what the server sends)"
    if "Client._flusher" in names:
        return "nats-py flusher (writing to the server)"
    if frames and frames[-1][0] == "Runner.run":
        return "event loop internals (uvloop C)"
    return "other" if frames else "native code without a Python frame"


def summarise_profile(raw: str, python_cpu_s: float, top: int = 25) -> dict[str, Any]:
    """Own time per function and category, inclusive time per function, and time per evbus role,
    as percentages of the busy samples in py-spy's ``--format raw`` output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames: list[tuple[str, str]] = []
        for text in filter(None, stack.strip().split(";")):
            match = _FRAME.match(text)
            frames.append((match["name"], match["file"]) if match else (text, ""))
        if frames and any(frames[-1][0] == n and frames[-1][1].endswith(f) for n, f in IDLE_LEAVES):
            idle += count
            continue
        busy += count
        name, file = frames[-1] if frames else ("(no Python frame)", "")
        own[f"{name} ({_short(file)})"] += count
        categories[_leaf_category(name, file) if frames else "native code without a Python frame"] += count
        roles[_role(frames)] += count
        for key in {f"{n} ({_short(f)})" for n, f in frames if n not in ROOT_FRAMES}:
            inclusive[key] += count

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(key, round(100 * value / busy, 1)) for key, value in counter.most_common(n)] if busy else []

    return {
        "busySamples": busy,
        "idleSamplesLeftOut": idle,
        "busySeconds": busy / 100,
        "pythonProcessCpuSeconds": python_cpu_s,
        "byRole": shares(roles, 20),
        "ownByCategory": shares(categories, 30),
        "ownTop": shares(own, top),
        "inclusiveTop": shares(inclusive, top),
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/python3.11/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# --- the run ------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bursts: list[Burst] = []
    half: list[Burst] = []
    warmups: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    for round_no in range(args.rounds):
        for variant in args.servers:
            print(f"round {round_no + 1}/{args.rounds}: {variant.name} …", file=sys.stderr, flush=True)
            server = await start(variant, workdir)
            try:
                warm = await warm_up(server, args, workdir)
                warmups.append({"server": variant.name, **warm})
                full = await burst(server, args, workdir, rate=args.rate)
                bursts.append(full)
                print(f"  {_line(full)}", file=sys.stderr, flush=True)
                if variant.kind == "evbus" and not args.no_half_rate and not args.rate:
                    limited = await burst(server, args, workdir, rate=round(full.rt_per_s / 2))
                    half.append(limited)
                    print(f"  half rate: {_line(limited)}", file=sys.stderr, flush=True)
                if variant.kind == "evbus" and args.profile and profile is None:
                    profile = await profiled_burst(server, args, workdir)
            finally:
                await server.stop()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "options": {
            "stations": args.stations,
            "duration": args.duration,
            "protocol": args.protocol,
            "servers": [v.name for v in args.servers],
            "rounds": args.rounds,
            "rate": args.rate,
            "warmup": args.warmup,
            "simCommand": args.sim_command,
        },
        "warmups": warmups,
        "bursts": [b.as_json() for b in bursts],
        "halfRate": [b.as_json() for b in half],
        "summary": summary(bursts, half),
        "profile": profile,
    }


def _line(b: Burst) -> str:
    return (
        f"{b.round_trips} rt in {b.window_s:.1f} s = {b.rt_per_s:.0f}/s, {b.cpu_us_per_rt:.0f} µs CPU/rt, "
        f"p50/p99 {b.latency('p50'):.2f}/{b.latency('p99'):.2f} ms, errors {_errors(b)}"
    )


def _errors(b: Burst) -> int:
    return sum(int(n) for n in (b.sim.get("errors") or {}).values())


def summary(bursts: list[Burst], half: list[Burst]) -> dict[str, Any]:
    """Per server the median over rounds; evbus's ratios; the half-rate p99; what uvloop bought."""
    by_server: dict[str, list[Burst]] = {}
    for b in bursts:
        by_server.setdefault(b.server, []).append(b)
    rows: dict[str, dict[str, Any]] = {}
    for name, runs in by_server.items():
        cpu_rt = [b.cpu_us_per_rt for b in runs]
        rows[name] = {
            "cpuUsPerRoundTrip": statistics.median(cpu_rt),
            "cpuUsPerRoundTripRange": [min(cpu_rt), max(cpu_rt)],
            "roundTripsPerSecond": statistics.median(b.rt_per_s for b in runs),
            "serverCores": statistics.median(b.cpu_s / b.window_s for b in runs),
            "natsServerShare": statistics.median(b.cpu_by_process.get("nats-server", 0.0) / b.cpu_s for b in runs),
            "clientCores": statistics.median(b.client_cpu_s / b.window_s for b in runs),
            "p50": statistics.median(b.latency("p50") for b in runs),
            "p95": statistics.median(b.latency("p95") for b in runs),
            "p99": statistics.median(b.latency("p99") for b in runs),
            "max": max(b.latency("max") for b in runs),
            "errors": sum(_errors(b) for b in runs),
            "connected": min(int(b.sim.get("connected", 0)) for b in runs),
            "simRoundTripsPerSecond": statistics.median(float(b.sim.get("roundTripsPerSecond", 0)) for b in runs),
        }
    ratios: dict[str, dict[str, float]] = {}
    for name, row in rows.items():
        if not name.startswith("evbus"):
            continue
        ratios[name] = {
            other: row["cpuUsPerRoundTrip"] / rows[other]["cpuUsPerRoundTrip"]
            for other in rows
            if not other.startswith("evbus")
        }
        if name != "evbus" and "evbus" in rows:
            ratios[name]["evbus"] = row["cpuUsPerRoundTrip"] / rows["evbus"]["cpuUsPerRoundTrip"]
    half_rows = {
        b.server: {
            "rate": b.rate,
            "roundTripsPerSecond": b.rt_per_s,
            "cpuUsPerRoundTrip": b.cpu_us_per_rt,
            "p50": b.latency("p50"),
            "p95": b.latency("p95"),
            "p99": b.latency("p99"),
            "max": b.latency("max"),
            "p99TargetMet": b.latency("p99") < P99_TARGET_MS,
        }
        for b in half
    }
    return {"servers": rows, "ratios": ratios, "halfRate": half_rows}


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    opts = results["options"]
    out = [
        f"Round trips, {opts['stations']} stations, {opts['protocol']}, {opts['duration']:g} s window, "
        f"rate {opts['rate'] or 'flat out'}, "
        f"{opts['rounds']} round(s), {results['date']} ({results['machine']['cpus']} CPUs)",
        "",
        "| server | loop | **CPU µs / round trip** | round trips/s | server cores | nats-server share "
        "| client cores | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    loops = {b["server"]: b["loop"] for b in results["bursts"]}
    for name, r in s["servers"].items():
        low, high = r["cpuUsPerRoundTripRange"]
        spread = f" ({low:.0f}-{high:.0f})" if opts["rounds"] > 1 else ""
        out.append(
            f"| {name} | {loops[name]} | **{r['cpuUsPerRoundTrip']:.0f}**{spread} | {r['roundTripsPerSecond']:.0f} "
            f"| {r['serverCores']:.2f} | {100 * r['natsServerShare']:.0f} % | {r['clientCores']:.2f} "
            f"| {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.1f} | {r['errors']} |"
        )
    if s["ratios"]:
        out += ["", "| CPU per round trip | ratio | target |", "|---|---:|---|"]
        for name, ratios in s["ratios"].items():
            for other, ratio in ratios.items():
                target = TARGETS.get(other) if name == "evbus" else None
                verdict = f"<= {target}x ({'met' if ratio <= target else 'not met'})" if target else ""
                out.append(f"| {name} / {other} | {ratio:.2f} | {verdict} |")
    for name, h in s["halfRate"].items():
        out += [
            "",
            f"{name} at half its rate ({h['rate']:g} round trips/s requested, "
            f"{h['roundTripsPerSecond']:.0f} reached): p50 {h['p50']:.2f} ms, p95 {h['p95']:.2f} ms, "
            f"**p99 {h['p99']:.2f} ms** (target < {P99_TARGET_MS:g} ms: {'met' if h['p99TargetMet'] else 'not met'}), "
            f"max {h['max']:.1f} ms, CPU {h['cpuUsPerRoundTrip']:.0f} µs/rt",
        ]
    profile = results.get("profile")
    if profile:
        out += [
            "",
            f"evbus profile (py-spy, 100 Hz, one full-speed burst): {profile['busySeconds']:.1f} s of busy samples; "
            f"the evbus process used {profile['pythonProcessCpuSeconds']:.1f} s CPU meanwhile (py-spy's pauses "
            f"inflate it); nats-server is not in it. Percentages of busy samples.",
            "",
            "| where (by role) | % |",
            "|---|---:|",
        ]
        out += [f"| {name} | {share} |" for name, share in profile["byRole"]]
        out += ["", "| own time, by what the leaf frame is | % |", "|---|---:|"]
        out += [f"| {name} | {share} |" for name, share in profile["ownByCategory"]]
        out += ["", "| top functions, own time | % |", "|---|---:|"]
        out += [f"| `{name}` | {share} |" for name, share in profile["ownTop"][:15]]
        out += ["", "| top functions, inclusive time | % |", "|---|---:|"]
        out += [f"| `{name}` | {share} |" for name, share in profile["inclusiveTop"][:25]]
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the measured window per burst")
    parser.add_argument("--protocol", default="ocpp1.6", choices=["ocpp1.6", "ocpp2.0.1"])
    parser.add_argument(
        "--servers",
        type=lambda text: [Variant.parse(t) for t in text.split(",") if t.strip()],
        default=[Variant.parse(k) for k in KINDS],
        help="comma-separated: bare, floor, ocpp-lib, evbus, each optionally :uvloop or :asyncio "
        "(e.g. evbus,evbus:asyncio)",
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="round trips/s of every server's burst (default 0: flat out)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole list; the table shows medians")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of one station's round trips first")
    parser.add_argument("--boot-allowance", type=float, default=8.0, help="seconds for the sim to start and boot")
    parser.add_argument("--no-half-rate", action="store_true", help="skip evbus's burst at half its rate")
    parser.add_argument(
        "--profile", type=lambda p: Path(p).resolve(), help="also record evbus with py-spy to this file"
    )
    parser.add_argument("--json-out", help="write the results (every burst, the summary) to this file")
    parser.add_argument(
        "--sim-command",
        default=f"{BIN / 'evbus'} sim",
        help="the load client, given evbus sim's options (default: %(default)s)",
    )
    parser.add_argument("--workdir", help="keep logs and data here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def git_state() -> dict[str, Any]:
    """The commit measured and the files that differ from it (evbus is measured as it is on disk)."""
    git = shutil.which("git")
    if git is None:
        return {}
    root = Path(__file__).resolve().parent.parent

    def output(*command: str) -> str:
        done = subprocess.run([git, *command], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"commit": output("rev-parse", "HEAD"), "changed": output("status", "--porcelain").splitlines()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = git_state()
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evbus-roundtrip-")))
        results = asyncio.run(measure(args, workdir)) | {"git": state}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
