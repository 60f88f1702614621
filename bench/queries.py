"""Latency of the dashboard's read queries over a read model of 1 M stored messages.

    .venv/bin/python -m bench.queries [--db .evbus/bench/projection.duckdb] [--rounds 50]

Uses the read model ``bench.projection_ingest`` left behind (builds one, 1 M messages in batches
of 50 000, when ``--db`` does not exist). Every function of :mod:`projections.queries` the API
calls is timed as the API calls it (Python conversion to the view Structs included), on a cursor
of one connection as ``Projection.read`` does. The queries run round-robin, ``--rounds`` times
after two warm-up rounds, each round with other stations / transactions / tags, so noise from a
shared machine falls on all of them alike. ``SELECT count(*) FROM messages`` runs in the same
rounds as the baseline (the fixed cost of one round trip).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench import projection_ingest, synthetic
from projections import queries, schema
from projections.queries import MessageFilter, Page, TransactionFilter

TARGET_MS = 50.0
HEARTBEAT = 300  # the default interval the API passes to liveness
CALL_TIMEOUT = 30.0


def build(path: Path, messages: int) -> None:
    print(f"{path} does not exist: building it ({messages} messages, batches of 50000)")
    batches, _ = projection_ingest.batch_up(synthetic.stream(messages), 50_000)
    projection_ingest.run_fold(batches, path)


class Sample:
    """Values the dashboard would ask for: real stations, transactions and tags of this read model."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, seed: int) -> None:
        rng = random.Random(seed)

        def column(sql: str) -> list[Any]:
            values = [r[0] for r in cur.execute(sql).fetchall()]
            rng.shuffle(values)
            return values

        self.stations = column("SELECT station FROM stations ORDER BY station")
        self.transactions = [
            tuple(r) for r in cur.execute("SELECT transaction_id, station FROM transactions ORDER BY ALL").fetchall()
        ]
        rng.shuffle(self.transactions)
        self.tags = column("SELECT DISTINCT id_tag FROM transactions WHERE id_tag IS NOT NULL ORDER BY 1")
        last = cur.execute("SELECT max(ts) FROM messages").fetchone()
        assert last is not None, "the read model is empty"
        assert last[0] is not None, "the read model is empty"
        self.now: datetime = last[0].replace(tzinfo=UTC) + timedelta(seconds=1)

    def station(self, i: int) -> str:
        return str(self.stations[i % len(self.stations)])

    def transaction(self, i: int) -> tuple[str, str]:
        return self.transactions[i % len(self.transactions)]  # type: ignore[return-value]

    def tag(self, i: int) -> str:
        return str(self.tags[i % len(self.tags)])


Query = Callable[[duckdb.DuckDBPyConnection, int], Any]


def dashboard(s: Sample) -> dict[str, Query]:
    """Name → one call as the API makes it, the i-th variant."""
    now = s.now

    def overview(cur: duckdb.DuckDBPyConnection, i: int) -> Any:
        return queries.messages(cur, MessageFilter(), Page(limit=10)), queries.totals(cur, now)

    def metrics(cur: duckdb.DuckDBPyConnection, i: int) -> Any:
        return queries.online(cur), queries.frame_counts(cur), queries.latency_histograms(cur)

    def count(cur: duckdb.DuckDBPyConnection, i: int) -> Any:
        return cur.execute("SELECT count(*) FROM messages").fetchone()

    def csv(cur: duckdb.DuckDBPyConnection, i: int) -> Any:
        rows, total = queries.transactions(cur, TransactionFilter(), None)
        assert len(rows) == total
        return rows

    return {
        "baseline: SELECT count(*) FROM messages": count,
        "messages (newest 100)": lambda cur, i: queries.messages(cur, MessageFilter(), Page()),
        "messages ?identity=": lambda cur, i: queries.messages(cur, MessageFilter(identity=s.station(i)), Page()),
        "messages ?method=MeterValues": lambda cur, i: queries.messages(
            cur, MessageFilter(method="MeterValues"), Page()
        ),
        "messages ?type=CALLERROR": lambda cur, i: queries.messages(cur, MessageFilter(type="CALLERROR"), Page()),
        "messages ?identity=&type=CALL&direction=IN": lambda cur, i: queries.messages(
            cur, MessageFilter(identity=s.station(i), type="CALL", direction="IN"), Page()
        ),
        "messages ?since=-15min": lambda cur, i: queries.messages(
            cur, MessageFilter(since=now - timedelta(minutes=15)), Page()
        ),
        "messages ?offset=10000": lambda cur, i: queries.messages(cur, MessageFilter(), Page(offset=10_000)),
        "messages ?order=asc": lambda cur, i: queries.messages(cur, MessageFilter(), Page(), "asc"),
        "overview (10 messages + totals)": overview,
        "telemetry (totals)": lambda cur, i: queries.totals(cur, now),
        "connections": lambda cur, i: queries.connections(cur),
        "connections ?status=online": lambda cur, i: queries.connections(cur, status="online"),
        "connection detail": lambda cur, i: queries.connection(cur, s.station(i)),
        "stations": lambda cur, i: queries.stations(cur),
        "stations ?online=true": lambda cur, i: queries.stations(cur, online_only=True),
        "station detail": lambda cur, i: queries.station(cur, s.station(i)),
        "liveness (all stations)": lambda cur, i: queries.liveness(cur, now, None, HEARTBEAT),
        "metrics/actions": lambda cur, i: queries.action_metrics(cur, now, CALL_TIMEOUT),
        "metrics/actions ?identity=": lambda cur, i: queries.action_metrics(cur, now, CALL_TIMEOUT, s.station(i)),
        "transactions": lambda cur, i: queries.transactions(cur, TransactionFilter()),
        "transactions ?active=true": lambda cur, i: queries.transactions(cur, TransactionFilter(active=True)),
        "transactions ?identity=": lambda cur, i: queries.transactions(cur, TransactionFilter(identity=s.station(i))),
        "transactions ?idTag=": lambda cur, i: queries.transactions(cur, TransactionFilter(id_tag=s.tag(i))),
        "transactions ?since=-1h": lambda cur, i: queries.transactions(
            cur, TransactionFilter(since=now - timedelta(hours=1))
        ),
        "transactions ?format=csv (all)": csv,
        "transaction detail": lambda cur, i: queries.transaction(cur, *s.transaction(i)),
        "security": lambda cur, i: queries.security_events(cur, None, None, None, Page()),
        "security ?category=auth_failed": lambda cur, i: queries.security_events(
            cur, "auth_failed", None, None, Page()
        ),
        "station_exists": lambda cur, i: queries.station_exists(cur, s.station(i)),
        "/metrics (online, frame_counts, latency_histograms)": metrics,
        "frame_counts": lambda cur, i: queries.frame_counts(cur),
        "latency_histograms": lambda cur, i: queries.latency_histograms(cur),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=projection_ingest.DEFAULT_DB)
    parser.add_argument("--rounds", type=int, default=50, help="timed calls of each query (50)")
    parser.add_argument("--messages", type=int, default=1_000_000, help="size of a read model built here (1000000)")
    parser.add_argument("--only", help="run the queries whose name contains this")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.db.exists():
        build(args.db, args.messages)

    con = schema.connect(str(args.db))
    cur = con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    sizes = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in schema.TABLES}  # type: ignore[index]
    print(f"read model {args.db}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    threads = (cur.execute("SELECT current_setting('threads')").fetchone() or ("?",))[0]
    print(f"duckdb {duckdb.__version__}, threads {threads}, python {sys.version.split()[0]}, {args.rounds} rounds")
    sample = Sample(cur, args.seed)
    todo = dashboard(sample)
    if args.only:
        todo = {k: v for k, v in todo.items() if k.startswith("baseline") or args.only in k}
    times: dict[str, list[float]] = {name: [] for name in todo}
    for i in range(-2, args.rounds):
        for name, run in todo.items():
            start = time.perf_counter()
            run(cur, i)
            if i >= 0:
                times[name].append((time.perf_counter() - start) * 1000)

    base = percentile(times[next(iter(todo))], 95)
    print(f"\n| query | p50 ms | p95 ms | max ms | p95 / baseline | p95 < {TARGET_MS:.0f} ms |")
    print("|---|---:|---:|---:|---:|:---:|")
    misses = []
    for name, values in times.items():
        p50, p95 = statistics.median(values), percentile(values, 95)
        ok = p95 < TARGET_MS
        if not ok:
            misses.append(name)
        verdict = "yes" if ok else "**no**"
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {max(values):.2f} | {p95 / base:.1f} | {verdict} |")
    print(
        f"\n{len(times) - len(misses)} of {len(times)} under {TARGET_MS:.0f} ms at p95"
        + (f"; missing: {', '.join(misses)}" if misses else "")
    )
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
