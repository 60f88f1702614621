"""Projection ingest rate: batching, the fold, and the floor of writing the same rows at all.

    .venv/bin/python -m bench.projection_ingest [--messages 1000000] [--batch 20000] [--batch 50000]

Generates the synthetic stream in memory (:mod:`bench.synthetic`, not timed), then measures in one
run:

(a) batching: ``Batch.add_ocpp`` / ``Batch.add_event`` per message, the runner's only per-message
    Python;
(b) fold: ``fold.apply`` of each batch into a fresh DuckDB file (the batches' Arrow conversion
    included), and end to end (a) + (b) in events/s;
(c) baseline: the same batches' Arrow tables appended to plain tables (no keys, no casts, no
    read models) in a fresh file, measured before and after (b): the floor (b) is compared to;
(d) live: the next 2000 messages of the stream in batches of 100 on top of the read model (b)
    built, as the runner applies them when the load is light: the time one apply takes.

Machines are noisy: read the ratios, not the absolute rates. The file of the last batch size is
kept for ``bench.queries`` (``--db``).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import duckdb

from bench import synthetic
from projections import fold, schema
from projections.batch import Batch

DEFAULT_DB = Path(".evbus/bench/projection.duckdb")
LIVE_MESSAGES = 2000  # (d): the stream goes on after the timed part, in small batches
LIVE_BATCH = 100


def fresh(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    return schema.connect(str(path))


def batch_up(messages: list[synthetic.Message], size: int) -> tuple[list[Batch], float]:
    """(a): the messages into batches of ``size``; returns the batches and the seconds it took."""
    batches: list[Batch] = []
    start = time.perf_counter()
    batch = Batch()
    for m in messages:
        if m.stream == "OCPP":
            batch.add_ocpp(m.seq, m.stream_ns, m.subject, m.headers, m.data)
        else:
            batch.add_event(m.seq, m.stream_ns, m.subject, m.headers, m.data)
        if batch.size >= size:
            batches.append(batch)
            batch = Batch()
    if batch.size:
        batches.append(batch)
    return batches, time.perf_counter() - start


def baseline(batches: list[Batch], path: Path) -> float:
    """(c): the same Arrow tables appended to plain tables, one transaction per batch."""
    con = fresh(path)
    frames, conns, events = batches[0].tables()
    for name, table in (("f", frames), ("c", conns), ("e", events)):
        con.register(name, table)
        con.execute(f"CREATE TABLE plain_{name} AS SELECT * FROM {name} LIMIT 0")
        con.unregister(name)
    start = time.perf_counter()
    for batch in batches:
        frames, conns, events = batch.tables()
        con.execute("BEGIN TRANSACTION")
        for name, table in (("f", frames), ("c", conns), ("e", events)):
            con.register(name, table)
            con.execute(f"INSERT INTO plain_{name} SELECT * FROM {name}")
            con.unregister(name)
        con.execute("COMMIT")
    con.execute("CHECKPOINT")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def run_fold(
    batches: list[Batch], path: Path, live: list[Batch] | None = None
) -> tuple[float, list[float], list[float]]:
    """(b): ``fold.apply`` per batch into a fresh read model; total seconds and each batch's.

    (d): then each of the ``live`` batches, timed one by one (not part of (b)'s total)."""
    con = fresh(path)
    schema.create(con)
    each = []
    start = time.perf_counter()
    for batch in batches:
        t = time.perf_counter()
        fold.apply(con, batch)
        each.append(time.perf_counter() - t)
    con.execute("CHECKPOINT")
    elapsed = time.perf_counter() - start
    small = []
    for batch in live or []:
        t = time.perf_counter()
        fold.apply(con, batch)
        small.append(time.perf_counter() - t)
    con.close()
    return elapsed, each, small


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1000:8.1f} k/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages of both streams (1000000)")
    parser.add_argument("--stations", type=int, default=2000, help="charge points (2000)")
    parser.add_argument(
        "--batch", type=int, action="append", help="batch size; repeat for several (default: 20000 and 50000)"
    )
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"read model kept for bench.queries ({DEFAULT_DB})")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sizes: list[int] = args.batch or [20_000, 50_000]

    t = time.perf_counter()
    messages = synthetic.stream(args.messages + LIVE_MESSAGES, args.stations, args.seed)
    live_messages, messages = messages[args.messages :], messages[: args.messages]
    n = len(messages)
    ocpp = sum(1 for m in messages if m.stream == "OCPP")
    print(
        f"generated {n} messages ({ocpp} OCPP, {n - ocpp} EVENTS) of {args.stations} stations "
        f"in {time.perf_counter() - t:.1f} s (not timed below)"
    )
    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}")
    scratch = args.db.with_name(args.db.stem + ".baseline.duckdb")

    for size in sizes:
        gc.collect()
        batch_up(messages, size)  # once to warm the allocator: the first pass over 1 M messages is slower
        gc.collect()
        batches, batching = batch_up(messages, size)
        gc.collect()
        gc.freeze()  # the batches stay alive: keep the collector from walking them during the timings
        base_before = baseline(batches, scratch)
        live, _ = batch_up(live_messages, LIVE_BATCH)
        folding, each, small = run_fold(batches, args.db, live)
        base_after = baseline(batches, scratch)
        gc.unfreeze()
        base = min(base_before, base_after)
        tenth = max(1, len(each) // 10)
        print(f"\nbatch size {size} ({len(batches)} batches)")
        print(f"  (a) batching   {batching:7.2f} s  {rate(n, batching)}  {batching / n * 1e6:5.2f} µs/message")
        print(
            f"  (b) fold       {folding:7.2f} s  {rate(n, folding)}  per batch p50 "
            f"{statistics.median(each) * 1000:.0f} ms, first tenth {statistics.mean(each[:tenth]) * 1000:.0f} ms, "
            f"last tenth {statistics.mean(each[-tenth:]) * 1000:.0f} ms"
        )
        print(f"  (a)+(b) end to end {batching + folding:5.2f} s  {rate(n, batching + folding)}")
        print(
            f"  (c) baseline   {base:7.2f} s  {rate(n, base)}  (before {base_before:.2f} s, after {base_after:.2f} s)"
        )
        print(f"  ratio fold / baseline: {folding / base:.1f}x")
        print(f"  ratio end to end / baseline: {(batching + folding) / base:.1f}x")
        print(
            f"  (d) then {len(small)} live batches of {LIVE_BATCH}: "
            f"apply p50 {statistics.median(small) * 1000:.0f} ms, max {max(small) * 1000:.0f} ms"
        )
        del batches
    scratch.unlink(missing_ok=True)
    scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    con = duckdb.connect(str(args.db), read_only=True)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in schema.TABLES}  # type: ignore[index]
    con.close()
    print(f"\nread model {args.db}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
