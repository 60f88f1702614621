"""The API process's read model: waiting for it to catch up with the streams, and reading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import httpx
from nats.aio.client import Client as NATS

from evbus.bootstrap import PROJECTION_FILE
from projections.runner import stream_heads
from tests.chaos.waits import until


async def heads(nc: NATS) -> dict[str, int]:
    return await stream_heads(nc.jetstream())


async def caught_up(api_url: str, nc: NATS, timeout: float = 30.0) -> dict[str, int]:
    """Wait until the API's projection (``/healthz``) applied everything the streams hold now."""
    wanted = await heads(nc)
    async with httpx.AsyncClient(base_url=api_url, timeout=5) as http:

        async def done() -> bool:
            try:
                positions = (await http.get("/healthz")).json()["projection"]
            except httpx.HTTPError:
                return False
            return all(positions.get(s, 0) >= seq for s, seq in wanted.items())

        await until(done, timeout, interval=0.1)
    return wanted


def projection_file(data_dir: Path) -> Path:
    return data_dir / PROJECTION_FILE


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a read model no process holds any more."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def duplicate_messages(path: Path, prefix: str) -> list[tuple[Any, ...]]:
    """``messages`` rows of stations ``prefix…`` that share (station, unique id, direction, type)."""
    return query(
        path,
        "SELECT station, unique_id, direction, type, count(*) FROM messages "  # noqa: S608 - a test's constant
        f"WHERE station LIKE '{prefix}%' AND unique_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1 LIMIT 20",
    )
