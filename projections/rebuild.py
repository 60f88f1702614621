"""``evbus projections rebuild``: drop the read models and replay the streams from the start.

The new read model is built beside the old one and moved over it only when it has caught up with
everything stored when the rebuild began, so an interrupted rebuild leaves the old file intact.
The same runner and fold as incremental processing do the work: a rebuild cannot end in another
state than the one the API process reaches message by message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import duckdb
from nats.aio.client import Client as NATS

from projections.runner import STREAMS, Projection, stream_heads

Progress = Callable[[int, int], None]  # (applied, total)


class RebuildError(RuntimeError):
    pass


def _check_not_open(path: Path) -> None:
    if not path.exists():
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        raise RebuildError(
            f"{path} is held by another process (the API owns its projection): stop it, then rebuild"
        ) from exc


async def rebuild(nc: NATS, path: Path, progress: Progress | None = None, batch_max: int = 100_000) -> dict[str, int]:
    """Rebuild ``path`` from the streams; returns the stream sequences it reached.

    Batches are full at once when catching up, so their size is the rebuild's pace: 100 000 messages
    per DuckDB transaction ran 1 M messages 10-20 % faster than 50 000 (bench/RESULTS.md), the
    Python side filling the next batch while DuckDB applies the last one."""
    _check_not_open(path)
    fresh = path.with_name(path.name + ".rebuild")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)
    projection = Projection(nc, fresh, batch_max=batch_max)
    heads = await stream_heads(projection.js)  # TELEMETRY: its last reading (the raw messages are not read)
    first = 0  # messages retention already removed, never to be applied
    for stream in STREAMS:
        first += max(0, (await projection.js.stream_info(stream)).state.first_seq - 1)
    total = max(0, sum(heads.values()) - first)
    async with projection:
        while True:
            done = all(projection.positions[s] >= heads[s] for s in STREAMS)
            if progress:
                progress(min(total, max(0, sum(projection.positions.values()) - first)), total)
            if done:
                break
            with contextlib.suppress(TimeoutError):
                await projection.wait_for(heads, timeout=0.2)
    fresh.replace(path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return heads
