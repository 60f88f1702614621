"""The runner's flush policy and its consumers: quick when quiet, sparing under load, and nothing lost
or doubled when the server goes away and comes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from evbus.embedded_nats import embedded_nats, free_port
from projections import schema
from projections.rebuild import rebuild
from projections.runner import Projection, rest_after
from schemas import streams
from tests.projections.synthetic import Script, device_traffic, publish
from tests.projections.test_rebuild import dump, private_nats

__all__ = ["private_nats"]  # a fixture


@pytest.mark.parametrize("took", [0.001, 0.07, 0.2, 0.33])
def test_the_writer_rests_so_that_duckdb_is_busy_at_most_busy_max(took: float) -> None:
    rest = rest_after(took, busy_max=0.25, rest_max=1.0)
    assert took / (took + rest) == pytest.approx(0.25)


def test_the_rest_is_bounded() -> None:
    assert rest_after(2.0, busy_max=0.25, rest_max=1.0) == 1.0


async def test_a_lone_message_after_a_quiet_spell_is_applied_at_once(tmp_path: Path) -> None:
    messages = Script().traffic(4)
    async with embedded_nats(tmp_path / "nats", client_port=0, mqtt_port=0) as server:
        nc = await nats.connect(server.url)
        await streams.declare(nc.jetstream())
        async with Projection(nc, tmp_path / "p.duckdb", flush_interval=0.02) as projection:
            await publish(nc.jetstream(), messages[:-1])
            await projection.catch_up(timeout=30)
            await asyncio.sleep(1.5)  # quiet: longer than any rest the last apply asked for
            started = time.monotonic()
            await publish(nc.jetstream(), messages[-1:])
            await projection.wait_for({"OCPP": projection.positions["OCPP"] + 1}, timeout=5)
            # the 20 ms gathering time and one apply of one message (~70 ms, more on a busy machine)
            assert time.monotonic() - started < 1.0
        await nc.drain()


async def test_a_restarted_server_loses_and_doubles_nothing(tmp_path: Path) -> None:
    messages = Script().traffic(60)
    half = len(messages) // 2
    port = free_port()
    path = tmp_path / "p.duckdb"
    async with embedded_nats(tmp_path / "nats", client_port=port, mqtt_port=0) as server:
        nc = await nats.connect(server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        await streams.declare(nc.jetstream())
        await publish(nc.jetstream(), messages[:half])
        projection = Projection(nc, path)
        projection.retry_s = 0.1
        await projection.start()
        await projection.catch_up(timeout=30)
    # the server is gone: the consumers' connections broke
    async with embedded_nats(tmp_path / "nats", client_port=port, mqtt_port=0):
        for _ in range(200):
            if nc.is_connected:
                break
            await asyncio.sleep(0.05)
        await publish(nc.jetstream(), messages[half:])
        await projection.catch_up(timeout=30)
        assert projection.resubscribed >= 2  # both streams started a new consumer
        await projection.stop()
        rebuilt = tmp_path / "rebuilt.duckdb"
        await rebuild(nc, rebuilt)
        await nc.drain()
    assert dump(path) == dump(rebuilt)


async def test_a_read_model_of_an_older_schema_is_rebuilt_from_the_streams(
    private_nats: tuple[str, NATS], tmp_path: Path
) -> None:
    _, nc = private_nats
    await publish(nc.jetstream(), Script().traffic(2) + device_traffic(2))
    path = tmp_path / "old.duckdb"
    con = schema.connect(str(path))  # a file of schema 3: no device tables, positions of its own
    schema.create(con)
    con.execute("DROP TABLE devices; DROP TABLE readings; DROP TABLE device_sessions")
    con.execute("UPDATE meta SET value = '3'; INSERT INTO checkpoints VALUES ('OCPP', 5), ('EVENTS', 1)")
    con.close()
    async with Projection(nc, path) as projection:
        await projection.catch_up(timeout=30)
        assert projection.positions["TELEMETRY"] > 0
    con = schema.connect(str(path))
    try:
        assert schema.version(con) == schema.VERSION == 4
        assert con.execute("SELECT count(*) FROM devices").fetchone() == (4,)
    finally:
        con.close()
    rebuilt = tmp_path / "rebuilt.duckdb"
    await rebuild(nc, rebuilt)
    assert dump(path) == dump(rebuilt)


async def test_a_tail_removed_by_a_purge_is_not_waited_for(tmp_path: Path) -> None:
    """``nats stream purge OCPP --subject 'ocpp.B.>'`` of the newest messages: "caught up" is up to
    the last message still stored, not the sequence the purged ones had."""
    script = Script()
    async with embedded_nats(tmp_path / "nats", client_port=0, mqtt_port=0) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await streams.declare(js)
        await publish(js, script.traffic(2))
        await publish(js, script.session_16("PURGED", 0, 0))
        await js.purge_stream("OCPP", subject="ocpp.PURGED.>")
        async with Projection(nc, tmp_path / "p.duckdb") as projection:
            heads = await projection.catch_up(timeout=10)
        assert heads["OCPP"] < (await js.stream_info("OCPP")).state.last_seq
        await nc.drain()
