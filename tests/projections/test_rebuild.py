"""The read models are a pure function of the stream: message-by-message, batch-by-batch, a rebuild
and a process killed with SIGKILL and restarted all end in the same tables, no row lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import nats
import pytest
from nats.aio.client import Client as NATS

from evbus.embedded_nats import embedded_nats
from evbus.settings import environment
from projections import schema
from projections.rebuild import RebuildError, rebuild
from projections.runner import Projection
from schemas import streams
from tests.projections.synthetic import Script, command_events, device_traffic, publish, security_events
from tests.support import eventually

COMPARED = [t for t in schema.TABLES if t != "meta"]


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[tuple[str, NATS]]:
    """A nats-server of this test's own, so the stream holds exactly what the test publishes."""
    async with embedded_nats(tmp_path / "nats", client_port=0, mqtt_port=0) as server:
        nc = await nats.connect(server.url)
        await streams.declare(nc.jetstream())
        try:
            yield server.url, nc
        finally:
            await nc.drain()


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in COMPARED}  # noqa: S608
    finally:
        con.close()


SECURITY_EVENTS = 25


def events_of(stations: int) -> int:
    """How many EVENTS messages :func:`fill` publishes: security events, and command events (each
    station's command has three, the offline one two)."""
    return SECURITY_EVENTS + 3 * stations + 2


async def fill(nc: NATS, stations: int, devices: int = 0) -> int:
    """Publish the OCPP and EVENTS traffic of ``stations`` stations and, with ``devices``, MQTT
    devices' readings and raw messages; returns how many OCPP and EVENTS messages."""
    messages = Script().traffic(stations) + security_events(SECURITY_EVENTS) + command_events(stations)
    assert len(messages) - len(Script().traffic(stations)) == events_of(stations)
    everything = messages + device_traffic(devices)
    for start in range(0, len(everything), 2000):
        await publish(nc.jetstream(), everything[start : start + 2000])
    return len(messages)


def last_reading(devices: int) -> int:
    """TELEMETRY's sequence of the last reading :func:`fill` publishes (raw messages count too)."""
    subjects = [m.subject for m in device_traffic(devices)]
    return max(i + 1 for i, s in enumerate(subjects) if s.count(".") == 2)


async def test_batch_boundaries_and_rebuild_change_nothing(private_nats: tuple[str, NATS], tmp_path: Path) -> None:
    _, nc = private_nats
    await fill(nc, stations=40, devices=10)
    await nc.jetstream().publish("telemetry.raw.mqtt.last", b"a raw message after the last reading")
    small = tmp_path / "small-batches.duckdb"
    async with Projection(nc, small, batch_max=7) as projection:  # boundaries fall everywhere
        await projection.catch_up(timeout=60)
    rebuilt = tmp_path / "rebuilt.duckdb"
    heads = await rebuild(nc, rebuilt)
    assert heads == {"OCPP": pytest.approx(heads["OCPP"]), "EVENTS": events_of(40), "TELEMETRY": last_reading(10)}

    a, b = dump(small), dump(rebuilt)
    for table in COMPARED:
        assert a[table] == b[table], table

    # and the tables say what the stream said
    con = duckdb.connect(str(rebuilt), read_only=True)
    try:
        rows = con.execute("SELECT protocol, status, count(*), sum(meter_stop - meter_start) FROM transactions "
                           "GROUP BY ALL ORDER BY ALL").fetchall()  # fmt: skip
        assert rows == [("ocpp1.6", "completed", 20, 20 * 900.0), ("ocpp2.0.1", "completed", 20, 20 * 2000.0)]
        retried = con.execute("SELECT count(*), count(answered_seq) FROM calls WHERE action = 'MeterValues'").fetchone()
        assert retried == (40, 40)  # each retry of the same unique id paired with its own answer
        assert con.execute("SELECT count(*) FROM messages WHERE type = 'INVALID'").fetchone() == (20,)
        assert con.execute("SELECT count(*) FROM connections WHERE disconnected_at IS NULL").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM events").fetchone() == (events_of(40),)
        # what operator commands caused
        assert con.execute("SELECT count(*) FROM commands").fetchone() == (41,)
        rows = con.execute("SELECT status, count(*) FROM reservations GROUP BY ALL ORDER BY ALL").fetchall()
        assert rows == [("cancelled", 10), ("expired", 20), ("failed", 10), ("used", 40)]
        assert con.execute("SELECT count(*), sum(list_version) FROM local_lists").fetchone() == (40, 20 * 2 + 20 * 5)
        assert con.execute("SELECT count(*) FROM local_list_entries").fetchone() == (80,)
        assert con.execute("SELECT count(firmware_status), count(diagnostics_status) FROM stations").fetchone() == (
            40,
            40,
        )
        # MQTT devices: 10 evcc loadpoints and 10 charging-only devices, two sessions each
        assert con.execute("SELECT count(*), count(DISTINCT device_id) FROM readings").fetchone() == (150, 20)
        rows = con.execute("SELECT trigger, status, count(*) FROM device_sessions GROUP BY ALL ORDER BY ALL").fetchall()
        assert rows == [("charging", "active", 10), ("charging", "completed", 10), ("connected", "active", 10),
                        ("connected", "completed", 10)]  # fmt: skip
    finally:
        con.close()


async def test_a_projection_resumes_from_its_checkpoint(private_nats: tuple[str, NATS], tmp_path: Path) -> None:
    _, nc = private_nats
    path = tmp_path / "p.duckdb"
    messages = Script().traffic(10)
    half = len(messages) // 2
    await publish(nc.jetstream(), messages[:half])
    async with Projection(nc, path) as projection:
        await projection.catch_up()
        first = dict(projection.positions)
    await publish(nc.jetstream(), messages[half:])
    async with Projection(nc, path) as projection:
        assert projection.positions == first  # resumed from the file, not from the start
        await projection.catch_up()
    once = tmp_path / "once.duckdb"
    await rebuild(nc, once)
    assert dump(path) == dump(once)


async def test_rebuild_refuses_a_file_another_process_holds(private_nats: tuple[str, NATS], tmp_path: Path) -> None:
    _, nc = private_nats
    path = tmp_path / "held.duckdb"
    held = subprocess.Popen(  # another process holding the file, as the API does
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert held.stdout is not None
        assert held.stdout.readline().strip() == b"ok"
        with pytest.raises(RebuildError, match="another process"):
            await rebuild(nc, path)
    finally:
        held.kill()
        held.wait()


# --- a real process, killed -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def api_process(url: str, data_dir: Path) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    env = environment(nats_url=url, api_port=0, api_token="t", data_dir=data_dir, log_level="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "evbus.cli", "api"], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=30)
        assert b"http://" in line, line
        base = line.decode().split("http://", 1)[1].split("/schema")[0]
        yield proc, f"http://{base}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)


async def test_killed_mid_stream_the_projection_loses_and_doubles_nothing(
    private_nats: tuple[str, NATS], tmp_path: Path
) -> None:
    url, nc = private_nats
    total = await fill(nc, stations=1500)
    data_dir = tmp_path / "api"
    killed_at = 0
    async with api_process(url, data_dir) as (proc, base), httpx.AsyncClient(base_url=base) as client:

        async def applied_some() -> int:
            seq = (await client.get("/healthz")).json()["projection"]["OCPP"]
            return seq if seq > 0 else 0

        killed_at = await eventually(applied_some, timeout=30, interval=0.005)
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
    events = events_of(1500)
    assert 0 < killed_at < total - events, "the process was not killed mid-stream"

    async with api_process(url, data_dir) as (_, base), httpx.AsyncClient(base_url=base) as client:

        async def done() -> bool:
            positions = (await client.get("/healthz")).json()["projection"]
            return positions == {"OCPP": total - events, "EVENTS": events, "TELEMETRY": 0}

        await eventually(done, timeout=60)
    rebuilt = tmp_path / "rebuilt.duckdb"
    await rebuild(nc, rebuilt)
    assert dump(data_dir / "projections.duckdb") == dump(rebuilt)
