"""What the projection costs under live load: CPU per 1 000 frames at a steady arrival rate.

    .venv/bin/python -m bench.projection_live [--rate 5000 --rate 10000] [--seconds 20]

For each rate, on a fresh nats-server (own data directory, free ports): a child process runs
nothing but ``projections.runner.Projection`` (its defaults, a fresh DuckDB file, on uvloop as
``evbus`` runs) while this process publishes :mod:`bench.synthetic`'s stream at that rate, evenly
(every 10 ms a hundredth of a second's worth). After ``--warmup`` seconds, the child's CPU time
(user + system, all its threads: the event loop, the DuckDB writer and DuckDB's own) is taken over
``--seconds`` seconds of steady traffic:

- **CPU seconds per 1 000 frames** and the share of a core the projection takes;
- applies per second and frames per apply, and how stale the read model is: for each published
  message, the time from its publish to the apply that made it visible (p50, p99, max);
- then ``--probes`` lone messages, each after 2 s of silence: how long until each is visible.

The baseline measured in the same run is the child's CPU with no traffic at all (``idle``) over
the same window, and the publishing rate itself is checked (``achieved``). The child records the
applies itself (one entry per change of position, no polling), so that costs nothing measurable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.client import Client as NATS

from bench import synthetic
from evbus.embedded_nats import embedded_nats
from projections.runner import Projection
from schemas import streams

TICK_S = 0.01


async def child(url: str, path: Path, policy: dict[str, float]) -> None:
    """``--child``: a projection, recording (time, OCPP position) at every apply, until stdin closes."""
    nc = await nats.connect(url)
    records: list[tuple[float, int, float]] = []
    async with Projection(nc, path, **policy) as projection:  # type: ignore[arg-type]

        async def record() -> None:
            changed = projection._changed  # the runner notifies it after each apply
            last = -1
            while True:
                async with changed:
                    await changed.wait()
                position = projection.positions["OCPP"]
                if position != last:  # with the writer's busy seconds so far, where the runner counts them
                    records.append((time.monotonic(), position, getattr(projection, "apply_seconds", float("nan"))))
                    last = position

        task = asyncio.create_task(record())
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        task.cancel()
    await nc.close()
    print(json.dumps(records), flush=True)


class Child:
    def __init__(self, url: str, path: Path, policy: dict[str, float]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.projection_live", "--child", url, str(path), json.dumps(policy)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"projection child did not start: {line!r}")
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def finish(self) -> list[tuple[float, int, float]]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"stop\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.read()
        self.proc.wait(30)
        return [tuple(r) for r in json.loads(out.strip().splitlines()[-1])]  # type: ignore[misc]


async def publish_steady(
    nc: NATS, messages: list[synthetic.Message], rate: int, seconds: float, published: dict[int, float]
) -> int:
    """Publish ``rate`` messages a second for ``seconds``; record each OCPP sequence's publish time."""
    per_tick = rate * TICK_S
    start = time.monotonic()
    sent = 0
    ocpp = len(published)
    tick = 0
    while True:
        tick += 1
        due = min(len(messages), int(tick * per_tick))
        if time.monotonic() - start >= seconds or sent >= len(messages):
            break
        now = time.monotonic()
        for m in messages[sent:due]:
            await nc.publish(m.subject, m.data, headers=m.headers)
            if m.stream == "OCPP":
                ocpp += 1
                published[ocpp] = now
        sent = due
        await nc.flush()
        delay = start + tick * TICK_S - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return sent


def visible_after(records: list[tuple[float, int, float]], published: dict[int, float], seqs: range) -> list[float]:
    """Seconds from publish to the first apply whose position covers it."""
    out, i = [], 0
    for seq in seqs:
        while i < len(records) and records[i][1] < seq:
            i += 1
        if i == len(records):
            break
        out.append(records[i][0] - published[seq])
    return out


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))


async def one_rate(rate: int, args: argparse.Namespace, messages: list[synthetic.Message]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"live-{rate}-"))
    try:
        return await _one_rate(rate, args, messages, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _one_rate(
    rate: int, args: argparse.Namespace, messages: list[synthetic.Message], work: Path
) -> dict[str, Any]:
    async with embedded_nats(work / "nats", client_port=0, mqtt_port=0) as server:
        nc = await nats.connect(server.url)
        await streams.declare(nc.jetstream())
        runner = await asyncio.to_thread(Child, server.url, work / "projection.duckdb", policy(args))
        idle_start = runner.cpu()
        await asyncio.sleep(args.seconds / 4)
        idle = (runner.cpu() - idle_start) / (args.seconds / 4) * args.seconds
        published: dict[int, float] = {}
        sent = await publish_steady(nc, messages, rate, args.warmup, published)
        window_seq = len(published)
        cpu0, t0 = runner.cpu(), time.monotonic()
        sent += await publish_steady(nc, messages[sent:], rate, args.seconds, published)
        cpu1, t1 = runner.cpu(), time.monotonic()
        window_end = len(published)
        frames = sum(1 for m in messages[:sent] if m.stream == "OCPP") - window_seq
        await asyncio.sleep(2)  # quiet, before each lone message
        probes = []
        lone = [m for m in messages[sent : sent + 100] if m.stream == "OCPP"][: args.probes]
        for m in lone:
            await nc.publish(m.subject, m.data, headers=m.headers)
            await nc.flush()
            published[len(published) + 1] = time.monotonic()
            probes.append(len(published))
            await asyncio.sleep(2)
        records = await asyncio.to_thread(runner.finish)
        await nc.close()
    lags = visible_after(records, published, range(window_seq + 1, window_end + 1))
    in_window = [r for r in records if t0 <= r[0] <= t1]
    seconds = t1 - t0
    busy = (in_window[-1][2] - in_window[0][2]) / (in_window[-1][0] - in_window[0][0]) if len(in_window) > 1 else 0.0
    return {
        "rate": rate,
        "achieved": frames / seconds,
        "cpu_s": cpu1 - cpu0,
        "idle_cpu_s": idle,
        "cpu_per_1000": (cpu1 - cpu0) / frames * 1000,
        "core_share": (cpu1 - cpu0) / seconds,
        "applies_per_s": len(in_window) / seconds,
        "writer_busy": busy,
        "frames_per_apply": frames / max(1, len(in_window)),
        "lag_p50": pct(lags, 50),
        "lag_p99": pct(lags, 99),
        "lag_max": max(lags) if lags else float("nan"),
        "probes": [x for p in probes for x in visible_after(records, published, range(p, p + 1))],
    }


def policy(args: argparse.Namespace) -> dict[str, float]:
    given = {"busy_max": args.busy_max, "rest_max": args.rest_max}
    return {k: v for k, v in given.items() if v is not None}


async def run(args: argparse.Namespace) -> int:
    rates: list[int] = args.rate or [5000, 10000]
    need = max(rates) * (args.warmup + args.seconds + 1) + args.probes + 10
    t = time.perf_counter()
    messages = synthetic.stream(int(need))
    print(f"generated {len(messages)} messages in {time.perf_counter() - t:.1f} s (not timed)")
    results = [await one_rate(rate, args, messages) for rate in rates]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}; policy {policy(args) or 'default'}\n")
    print(
        "| rate /s (achieved) | CPU s per 1 000 frames | share of a core (idle) | applies /s | frames per apply "
        "| writer busy | visible after p50 / p99 / max ms | lone message visible after, ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        probes = ", ".join(f"{p * 1000:.0f}" for p in r["probes"])
        print(
            f"| {r['rate']} ({r['achieved']:.0f}) | {r['cpu_per_1000']:.3f} | {r['core_share']:.0%} "
            f"({r['idle_cpu_s'] / args.seconds:.1%}) | {r['applies_per_s']:.1f} | {r['frames_per_apply']:.0f} "
            f"| {r['writer_busy']:.0%} "
            f"| {r['lag_p50'] * 1000:.0f} / {r['lag_p99'] * 1000:.0f} / {r['lag_max'] * 1000:.0f} | {probes} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, action="append", help="frames a second; repeat (default: 5000 and 10000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="steady traffic before the window (3)")
    parser.add_argument("--probes", type=int, default=5, help="lone messages after the window (5)")
    parser.add_argument("--busy-max", type=float, help="Projection(busy_max=...) (default: the runner's)")
    parser.add_argument("--rest-max", type=float, help="Projection(rest_max=...) (default: the runner's)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "DB", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import uvloop

    if args.child:
        uvloop.run(child(args.child[0], Path(args.child[1]), json.loads(args.child[2])))
        return 0
    return int(uvloop.run(run(args)))


if __name__ == "__main__":
    raise SystemExit(main())
