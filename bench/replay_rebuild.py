"""Replay and rebuild at 1 M stored messages, each against a baseline measured in the same run.

    .venv/bin/python -m bench.replay_rebuild [--messages 1000000] [--station-share 0.5] [--check]

Seeds a fresh nats-server (its own data directory, free ports) with ``--messages`` messages: the
seeded 2000-station stream of :mod:`bench.synthetic`, interleaved evenly with the history of ONE
more station, ``CP16-10003``, that makes up ``--station-share`` of them (its own seeded generator
run for months of traffic: heartbeats, sessions with meter values, statuses, reboots). A replay is
per station (``ocpp.{station}.>``), so the server filters that station's frames out of a stream
twice as large as what is replayed, as it would for a station with a long history among others.
Generating and publishing are not timed. Then, in this order:

(a) baseline: a bare nats-py ordered push consumer on the station's subject, counting messages
    in its callback (no decoding, nothing built): what nats-py itself delivers;
(b) in process: ``evbus.replay.frames()`` + ``encode_line`` per frame (what the CLI loop does),
    and ``evbus.replay.ndjson()`` (what the API route streams);
(c) ``evbus replay STATION --since 24h --format ndjson > /dev/null`` as a subprocess: wall time,
    and the same with a station that has no frames (interpreter start-up, imports, connecting),
    whose time is subtracted for the net rate;
(e) rebuild: two baselines, a bare nats-py ordered consumer draining both streams (the NATS side)
    and the plain Arrow append of :mod:`bench.projection_ingest` (the same messages batched and
    appended to plain tables: the DuckDB side); then ``projections.rebuild.rebuild()`` in process
    and ``evbus projections rebuild`` as a subprocess;
(d) ``GET /api/replay`` streamed with httpx from an API in a process of its own (``bootstrap.bus``
    + ``bootstrap.api`` with a Settings object, as the tests build one), its projection being the
    file (e) rebuilt, so it starts caught up. ``--check`` also compares the CLI's and the API's
    NDJSON byte for byte (sha256, not timed).

Baselines (a) run before and after (b)-(d) and the faster is kept. The machine is shared: read
the ratios. ``--only replay`` / ``--only rebuild`` run half of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench import projection_ingest, synthetic
from evbus import bootstrap, replay
from evbus.embedded_nats import embedded_nats
from evbus.settings import Settings
from projections import rebuild as rebuilding
from schemas import streams, subjects

STATION_INDEX = 10003  # outside the 2000 stations of bench.synthetic; an OCPP 1.6 charge point
API_TOKEN = "bench-token"  # noqa: S105 - a throwaway API of this run


@dataclass(frozen=True, slots=True)
class Seeded:
    station: str
    station_frames: int  # of the station, on the OCPP stream
    messages: list[synthetic.Message]  # everything published, with the sequences the streams gave


def generate(total: int, share: float, stations: int, seed: int) -> Seeded:
    """``total`` messages: ``share`` of them the station's OCPP frames, the rest bench.synthetic's."""
    big = synthetic.Station(STATION_INDEX, random.Random(seed * 7_919 + STATION_INDEX), {})
    wanted = round(total * share)
    own: list[synthetic.Item] = []
    frames = 0
    for item in big.run():
        if frames == wanted:
            break
        own.append(item)
        frames += item[1] == "OCPP"
    rest = synthetic.stream(total - len(own), stations, seed) if total > len(own) else []
    seqs = {"OCPP": 0, "EVENTS": 0}
    out: list[synthetic.Message] = []

    def put(stream: str, subject: str, headers: dict[str, str], data: bytes, t_us: int) -> None:
        seqs[stream] += 1
        out.append(synthetic.Message(stream, seqs[stream], t_us * 1000, subject, headers, data))

    # evenly interleaved: the station's k-th message goes after k/len(own) of the others
    j = 0
    for i, m in enumerate(rest):
        while j < len(own) and j * len(rest) <= i * len(own):
            t, stream, subject, headers, data = own[j]
            put(stream, subject, headers, data, t)
            j += 1
        put(m.stream, m.subject, m.headers, m.data, m.stream_ns // 1000)
    for t, stream, subject, headers, data in own[j:]:
        put(stream, subject, headers, data, t)
    return Seeded(big.name, frames, out)


async def publish(nc: NATS, messages: list[synthetic.Message]) -> None:
    """Core publishes, flushed every 5000: the streams store them in order; counted afterwards."""
    for i, m in enumerate(messages):
        await nc.publish(m.subject, m.data, headers=m.headers)
        if i % 5000 == 4999:
            await nc.flush()
    await nc.flush()
    want = {s: sum(1 for m in messages if m.stream == s) for s in ("OCPP", "EVENTS")}
    for _ in range(100):
        have = {s: (await nc.jetstream().stream_info(s)).state.messages for s in want}
        if have == want:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the streams hold {have}, {want} were published")


# --- measurements -----------------------------------------------------------------------------


@dataclass
class Row:
    key: str  # what other rows name as their baseline
    what: str
    seconds: float
    count: int
    baseline: str | None = None  # the key of the row it is compared with
    note: str = ""
    cpu: float | None = None  # CPU seconds of the measured evbus side (all its threads and processes)
    server_cpu: float | None = None  # CPU seconds of nats-server meanwhile

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


class Cpu:
    """CPU seconds of this process (every thread), of its children that ended, of other processes
    being measured (the API), and of nats-server."""

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.others: list[psutil.Process] = []

    def sample(self) -> tuple[float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = time.process_time() + children.ru_utime + children.ru_stime
        ours += sum(sum(p.cpu_times()[:2]) for p in self.others)
        return ours, sum(self.server.cpu_times()[:2])


@dataclass
class Spent:
    seconds: float = 0.0
    cpu: float = 0.0
    server_cpu: float = 0.0


@contextlib.contextmanager
def spending(cpu: Cpu) -> Iterator[Spent]:
    """Wall and CPU seconds of the block."""
    spent = Spent()
    ours, server = cpu.sample()
    start = time.perf_counter()
    yield spent
    spent.seconds = time.perf_counter() - start
    ours2, server2 = cpu.sample()
    spent.cpu, spent.server_cpu = ours2 - ours, server2 - server


def row(key: str, what: str, spent: Spent, count: int, baseline: str | None = None, note: str = "") -> Row:
    return Row(key, what, spent.seconds, count, baseline, note, spent.cpu, spent.server_cpu)


async def bare_consumer(nc: NATS, subject: str, stream: str, expected: int) -> float:
    """Seconds a bare nats-py ordered push consumer takes to deliver ``expected`` messages."""
    done = asyncio.Event()
    count = 0

    async def on_message(_: Msg) -> None:
        nonlocal count
        count += 1
        if count >= expected:
            done.set()

    start = time.perf_counter()
    sub = await nc.jetstream().subscribe(
        subject,
        stream=stream,
        cb=on_message,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    return elapsed


async def in_process_frames(nc: NATS, station: str, since: datetime) -> tuple[float, int]:
    """``replay.frames()`` and ``encode_line`` per frame, as the CLI loop does."""
    count, size = 0, 0
    start = time.perf_counter()
    async for frame in replay.frames(nc, station, since):
        size += len(replay.encode_line(frame) + b"\n")
        count += 1
    return time.perf_counter() - start, count


async def in_process_ndjson(nc: NATS, station: str, since: datetime) -> tuple[float, int]:
    """``replay.ndjson()``, as the API route streams it."""
    count = 0
    start = time.perf_counter()
    async for chunk in replay.ndjson(nc, station, since):  # type: ignore[attr-defined]
        count += chunk.count(b"\n")
    return time.perf_counter() - start, count


def evbus_env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVBUS_")}
    return {**env, "EVBUS_NATS_URL": url, "EVBUS_DATA_DIR": str(data_dir), "EVBUS_LOG_LEVEL": "WARNING"}


def run_cli(argv: list[str], env: dict[str, str], out: Any = subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "evbus.cli", *argv], env=env, stdout=out, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


@contextlib.asynccontextmanager
async def api_process(url: str, data_dir: Path) -> AsyncIterator[tuple[str, int]]:
    """An API of its own process (this module with ``--serve-api``); yields its base URL and pid."""
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "bench.replay_rebuild", "--serve-api", url, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        if not line.startswith(b"port "):
            raise RuntimeError(f"the API did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}", proc.pid
    finally:
        if proc.stdin:
            proc.stdin.close()
        await asyncio.to_thread(proc.wait, 30)


async def serve_api(url: str, data_dir: Path) -> None:
    """``--serve-api``: the projection and the REST API, until standard input closes."""
    settings = Settings(nats_url=url, api_port=0, api_token=API_TOKEN, data_dir=data_dir, log_level="WARNING")
    async with bootstrap.bus(settings, embedded=False) as b, bootstrap.api(b, settings) as served:
        await served.services.projection.catch_up(timeout=600)
        print(f"port {served.port}", flush=True)
        await asyncio.to_thread(sys.stdin.read)


async def api_replay(
    base: str, station: str, since: datetime, sink: Callable[[bytes], None] | None = None
) -> tuple[float, int]:
    count = 0
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    params = {"identity": station, "since": since.isoformat()}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        start = time.perf_counter()
        async with client.stream("GET", "/api/replay", params=params) as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw(1 << 20):
                count += chunk.count(b"\n")
                if sink:
                    sink(chunk)
        return time.perf_counter() - start, count


def sha256_of_cli(argv: list[str], env: dict[str, str]) -> str:
    digest = hashlib.sha256()
    with subprocess.Popen([sys.executable, "-m", "evbus.cli", *argv], env=env, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for block in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
            digest.update(block)
    return digest.hexdigest()


def plain_append(messages: list[synthetic.Message], batch: int, scratch: Path) -> float:
    """bench.projection_ingest's baseline: the batches' Arrow tables appended to plain tables."""
    batches, _ = projection_ingest.batch_up(messages, batch)
    gc.collect()
    gc.freeze()  # refcounting frees them afterwards all the same
    try:
        return projection_ingest.baseline(batches, scratch)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
            leftover.unlink(missing_ok=True)


# --- the run ----------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """Markdown; the ratio is time per message over the baseline's (1.00 = as fast, 2.00 = half as fast)."""
    by_key = {r.key: r for r in rows}
    lines = [
        "| | measurement | s | messages | per s | time ÷ baseline | CPU s: evbus + nats-server |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = by_key.get(r.baseline) if r.baseline else None
        ratio = f"{base.rate / r.rate:.2f} x ({base.key})" if base and r.rate else "baseline"
        note = f" ({r.note})" if r.note else ""
        cpu = f"{r.cpu:.1f} + {r.server_cpu:.1f}" if r.cpu is not None and r.server_cpu is not None else ""
        lines.append(
            f"| {r.key} | {r.what}{note} | {r.seconds:.2f} | {r.count} | {r.rate / 1000:.1f} k | {ratio} | {cpu} |"
        )
    return "\n".join(lines)


async def measure_replay(
    nc: NATS, cpu: Cpu, url: str, seeded: Seeded, rows: list[Row], api_dir: Path, check: bool
) -> None:
    station, expected = seeded.station, seeded.station_frames
    since = datetime.now(UTC) - timedelta(hours=24)
    subject = subjects.ocpp_station(station)
    with spending(cpu) as first:
        await bare_consumer(nc, subject, subjects.STREAM_OCPP, expected)
    print(f"(a) bare nats-py consumer: {first.seconds:.2f} s")
    with spending(cpu) as spent:
        _, n = await in_process_frames(nc, station, since)
    rows.append(row("b1", "replay.frames() + encode_line per frame (the CLI loop)", spent, n, "a"))
    print(f"(b) frames: {spent.seconds:.2f} s, {n} frames")
    if hasattr(replay, "ndjson"):
        with spending(cpu) as spent:
            _, n = await in_process_ndjson(nc, station, since)
        rows.append(row("b2", "replay.ndjson() (what the API streams)", spent, n, "a"))
        print(f"(b) ndjson: {spent.seconds:.2f} s, {n} frames")
    env = evbus_env(url, Path(tempfile.mkdtemp(prefix="cli-", dir=api_dir.parent)))
    argv = ["replay", station, "--since", "24h", "--format", "ndjson"]
    fixed = min(run_cli(["replay", "NO-SUCH-STATION", "--since", "24h", "--format", "ndjson"], env) for _ in range(2))
    with spending(cpu) as spent:
        run_cli(argv, env)
    rows.append(row("c1", "`evbus replay --format ndjson > /dev/null`, wall", spent, expected, "a"))
    net = Row("c2", "the same, net of start-up", spent.seconds - fixed, expected, "a", f"start-up {fixed:.2f} s")
    rows.append(net)
    print(f"(c) CLI: {spent.seconds:.2f} s wall, start-up {fixed:.2f} s")
    async with api_process(url, api_dir) as (base, pid):
        # a first request verifies the token (argon2, then cached) and finds the station: not timed
        started = time.perf_counter()
        await api_replay(base, station, datetime(2100, 1, 1, tzinfo=UTC))
        first_request = time.perf_counter() - started
        cpu.others = [psutil.Process(pid)]
        with spending(cpu) as spent:
            _, n = await api_replay(base, station, since)
        cpu.others = []
        note = f"CPU: API + client; first request, not timed: {first_request:.2f} s"
        rows.append(row("d", "`GET /api/replay`, httpx streaming from an API process", spent, n, "a", note))
        print(f"(d) API: {spent.seconds:.2f} s, {n} frames")
        if check:
            api_digest = hashlib.sha256()
            await api_replay(base, station, since, api_digest.update)
            exact = [*argv[:2], "--since", since.isoformat(), "--format", "ndjson"]
            same = api_digest.hexdigest() == sha256_of_cli(exact, env)
            print(f"--check: CLI and API NDJSON byte-identical: {same}")
            if not same:
                raise SystemExit("CLI and API NDJSON differ")
    with spending(cpu) as second:
        await bare_consumer(nc, subject, subjects.STREAM_OCPP, expected)
    print(f"(a) bare nats-py consumer again: {second.seconds:.2f} s")
    faster = min(first, second, key=lambda x: x.seconds)
    note = f"runs {first.seconds:.2f} / {second.seconds:.2f} s"
    rows.insert(0, row("a", "baseline: bare nats-py ordered consumer, no decoding", faster, expected, None, note))


async def measure_rebuild(
    nc: NATS, cpu: Cpu, url: str, seeded: Seeded, rows: list[Row], work: Path, batch: int | None
) -> Path:
    total = len(seeded.messages)
    heads = {s: sum(1 for m in seeded.messages if m.stream == s) for s in ("OCPP", "EVENTS")}
    with spending(cpu) as spent:
        for stream, subject in (
            (subjects.STREAM_OCPP, subjects.OCPP_ALL),
            (subjects.STREAM_EVENTS, subjects.EVENTS_ALL),
        ):
            await bare_consumer(nc, subject, stream, heads[stream])
    rows.append(row("e0", "baseline: bare nats-py ordered consumer, both streams", spent, total))
    print(f"(e0) bare consumer, both streams: {spent.seconds:.2f} s")
    with spending(cpu) as spent:
        t_plain = plain_append(seeded.messages, 50_000, work / "plain.duckdb")
    plain = row("e1", "baseline: plain Arrow append (bench.projection_ingest), 50 000/batch", spent, total)
    plain.seconds, plain.cpu, plain.server_cpu = t_plain, None, None  # the append alone, not the batching
    rows.append(plain)
    print(f"(e0) plain append: {t_plain:.2f} s")
    api_dir = work / "api"
    api_dir.mkdir(parents=True, exist_ok=True)
    target = api_dir / bootstrap.PROJECTION_FILE
    gc.collect()
    with spending(cpu) as spent:
        if batch:
            reached = await rebuilding.rebuild(nc, target, batch_max=batch)
        else:
            reached = await rebuilding.rebuild(nc, target)
    assert reached == heads, (reached, heads)
    note = f"batch_max {batch}" if batch else "default batch_max"
    rows.append(row("e2", "projections.rebuild.rebuild()", spent, total, "e1", note))
    print(f"(e) rebuild(): {spent.seconds:.2f} s")
    cli_dir = work / "cli-rebuild"
    cli_dir.mkdir(parents=True, exist_ok=True)
    with spending(cpu) as spent:
        run_cli(["projections", "rebuild"], evbus_env(url, cli_dir), out=subprocess.DEVNULL)
    rows.append(row("e3", "`evbus projections rebuild` (subprocess, wall)", spent, total, "e1"))
    print(f"(e) CLI rebuild: {spent.seconds:.2f} s")
    return api_dir


async def run(args: argparse.Namespace) -> int:
    t = time.perf_counter()
    seeded = generate(args.messages, args.station_share, args.stations, args.seed)
    print(
        f"generated {len(seeded.messages)} messages in {time.perf_counter() - t:.1f} s (not timed); "
        f"{seeded.station}: {seeded.station_frames} OCPP frames"
    )
    work = Path(tempfile.mkdtemp(prefix="replay-rebuild-", dir=args.work))
    rows: list[Row] = []
    try:
        async with embedded_nats(work / "nats", client_port=0, mqtt_port=0) as server:
            nc = await nats.connect(server.url)
            await streams.declare(nc.jetstream())
            t = time.perf_counter()
            await publish(nc, seeded.messages)
            print(f"published to {server.url} in {time.perf_counter() - t:.1f} s (not timed)")
            # the generated messages stay alive: keep the collector from walking them during the timings,
            # as the CLI and API processes have no such heap
            gc.collect()
            gc.freeze()
            cpu = Cpu(server.process.pid)
            api_dir = work / "api"  # without a rebuild first, the API catches up itself (not timed)
            if args.only in (None, "rebuild"):
                api_dir = await measure_rebuild(nc, cpu, server.url, seeded, rows, work, args.rebuild_batch)
            if args.only in (None, "replay"):
                await measure_replay(nc, cpu, server.url, seeded, rows, api_dir, args.check)
            await nc.close()
    finally:
        gc.unfreeze()  # let the interpreter free everything at exit (DuckDB's bindings check)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages of both streams (1000000)")
    parser.add_argument("--station-share", type=float, default=0.5, help="the replayed station's share (0.5)")
    parser.add_argument("--stations", type=int, default=2000, help="other charge points (2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild-batch", type=int, help="batch_max for rebuild() (default: its own)")
    parser.add_argument("--only", choices=["replay", "rebuild"], help="run half of it")
    parser.add_argument("--check", action="store_true", help="compare the CLI's and the API's NDJSON (not timed)")
    parser.add_argument("--work", type=Path, default=None, help="parent of the scratch directory (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--serve-api", nargs=2, metavar=("URL", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_api:
        url, data_dir = args.serve_api
        _loop_run(serve_api(url, Path(data_dir)))
        return 0
    return _loop_run(run(args))


def _loop_run(main: Any) -> Any:
    """On uvloop, as ``evbus`` runs (EVBUS_EVENT_LOOP defaults to uvloop)."""
    import uvloop

    return uvloop.run(main)


if __name__ == "__main__":
    raise SystemExit(main())
