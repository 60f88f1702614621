"""Readings per second from an MQTT client through the MQTT gateway into the projection, against
two floors measured in the same run.

    .venv/bin/python -m bench.readings [--messages 10000] [--devices 50] [--fold 200000]

A fresh nats-server (own data directory, free ports, its MQTT listener). A child process publishes
``--messages`` evcc messages (``evcc/loadpoints/{n}/chargePower``, a new value each time, so each
one makes a reading) at QoS 1 as fast as the listener takes them (100 in flight), round-robin over
``--devices`` loadpoints. This process runs what ``evbus up`` runs for it, on one event loop: the
MQTT gateway (:class:`gateways.mqtt.gateway.MqttGateway`: each message stored raw, then its
reading, each ack awaited) and the projection (:class:`projections.runner.Projection`, its
defaults, a fresh DuckDB file). Timed from the publisher's first message to:

- **stored**: TELEMETRY holds every reading (once with no projection running, once with);
- **projected**: the projection applied them all (``readings`` has one row per message, and the
  devices' rows the last value published).

The floors, in the same run, with the same publisher:

(a) the listener alone: an MQTT subscriber (aiomqtt, QoS 1, as the gateway subscribes) in this
    process that only counts: what any MQTT client of the listener gets, nothing stored;
(b) storing alone: two ``Store.store`` calls per message (the raw payload, then a reading-sized
    body), each ack awaited, one message after the other: the least the gateway's design (raw
    first, then the reading, in broker order) can do.

Then the fold's own capacity, no server: ``--fold`` readings (a day of 50 devices' evcc-like
readings, sessions included) taken into batches of 20 000 (the runner's ``batch_max``) and applied
by ``projections.fold.apply`` to a fresh file, against (c) the same batches' Arrow tables appended
as they are to a plain table of the same columns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import duckdb
import nats
import uvloop
from nats.js import JetStreamContext

from evbus.embedded_nats import embedded_nats
from evbus.publishing import Store
from evbus.settings import Settings
from gateways.mqtt.gateway import MqttGateway
from projections import fold, schema
from projections.batch import Batch
from projections.runner import Projection
from schemas import streams, subjects
from schemas.telemetry import Reading, encode

IN_FLIGHT = 100


def topic(root: str, n: int) -> str:
    return f"{root}/loadpoints/{n}/chargePower"


async def publisher(port: int, root: str, messages: int, devices: int) -> None:
    """``--publish``: the messages, QoS 1, ``IN_FLIGHT`` at a time; prints when it starts."""
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt warns of every call waiting for room
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=f"bench-{uuid.uuid4().hex[:8]}", max_inflight_messages=IN_FLIGHT
    ) as c:
        print("start", flush=True)
        for first in range(0, messages, IN_FLIGHT):
            batch = range(first, min(messages, first + IN_FLIGHT))
            await asyncio.gather(*(c.publish(topic(root, i % devices + 1), f"{i}.5".encode(), qos=1) for i in batch))
    print("done", flush=True)


@contextlib.asynccontextmanager
async def publishing(port: int, root: str, messages: int, devices: int) -> AsyncIterator[float]:
    """Run the publisher child; yields the time its first message went out."""
    args = ["-m", "bench.readings", "--publish", str(port), root, str(messages), str(devices)]
    child = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        line = await child.stdout.readline()
        assert line.strip() == b"start", line
        yield time.perf_counter()
    finally:
        await asyncio.wait_for(child.wait(), 120)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` every 10 ms until it is true (the caller bounds the wait)."""
    while True:
        if await check():
            return
        await asyncio.sleep(0.01)


async def floor_listener(port: int, messages: int, devices: int) -> float:
    """(a) messages/s an MQTT subscriber of the listener receives."""
    got = 0
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-floor") as client:
        await client.subscribe("floor/#", qos=1)
        async with publishing(port, "floor", messages, devices) as started:
            async for _ in client.messages:
                got += 1
                if got == messages:
                    break
            took = time.perf_counter() - started
    return messages / took


async def floor_store(url: str, messages: int) -> float:
    """(b) messages/s when each is two stored messages, each ack awaited."""
    nc = await nats.connect(url)
    store = await Store(nc).start()
    body = encode(Reading(source="floor", device="lp1", kind="evse", ts="2026-11-21T10:00:00.000000Z",
                          changed=["powerW"], power_w=1.5, online=True, raw_topic=topic("floor", 1), raw="1.5",
                          raw_seq=1, last_seen_at="2026-11-21T10:00:00.000000Z"))  # fmt: skip
    started = time.perf_counter()
    for i in range(messages):
        await store.store(subjects.mqtt_raw(topic("floor", 1)), b"%d.5" % i, {subjects.H_MSG_ID: f"f:{i}"})
        await store.store(subjects.telemetry("floor", "lp1"), body, {subjects.H_MSG_ID: f"f:{i}:0"})
    took = time.perf_counter() - started
    await store.stop()
    await nc.drain()
    return messages / took


async def through(
    url: str, port: int, data: Path, messages: int, devices: int, *, project: bool
) -> tuple[float, float]:
    """Messages/s stored (raw and reading) and, with ``project``, projected (0 without)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.purge_stream(subjects.STREAM_TELEMETRY)  # each run reads only its own messages
    settings = Settings(nats_url=url, mqtt_url=f"mqtt://127.0.0.1:{port}", mqtt_topics="evcc/#", data_dir=data)
    gateway = MqttGateway(nc, settings, url=settings.mqtt_url or "", gateway_id="bench")
    await gateway.start()
    async with contextlib.AsyncExitStack() as stack:
        projection = None
        if project:
            projection = await stack.enter_async_context(Projection(nc, data / f"{uuid.uuid4().hex}.duckdb"))

        async def connected() -> bool:
            return gateway.connected

        async def all_stored() -> bool:
            return await readings_stored(js) >= messages

        async with asyncio.timeout(30):
            await until(connected)
        async with publishing(port, "evcc", messages, devices) as started, asyncio.timeout(120):
            await until(all_stored)
            stored = time.perf_counter() - started
            if projection is not None:
                await projection.catch_up(timeout=120)
            projected = time.perf_counter() - started
        if projection is not None:

            def check(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
                return cur.execute(
                    """SELECT (SELECT count(*) FROM readings WHERE device_id LIKE 'evcc.%'),
                              (SELECT max(power_w) FROM devices WHERE source = 'evcc')"""
                ).fetchone()

            shown = await projection.read(check)
            assert shown == (messages, messages - 0.5), shown  # each one, and the last value published
    await gateway.stop()
    await nc.drain()
    return messages / stored, messages / projected if project else 0.0


async def readings_stored(js: JetStreamContext) -> int:
    info = await js.stream_info(subjects.STREAM_TELEMETRY, subjects_filter="telemetry.evcc.*")
    return sum((info.state.subjects or {}).values())


def fold_rates(count: int, devices: int, path: Path) -> tuple[float, float]:
    """Readings/s folded by ``fold.apply`` and (c) appended as they are, batches of 20 000."""
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    messages = []
    for i in range(count):
        n, k = i % devices, i // devices
        charging = (k // 100) % 2 == 0
        at = (t0 + timedelta(seconds=k)).isoformat(timespec="microseconds").replace("+00:00", "Z")
        reading = Reading(source="evcc", device=f"lp{n}", kind="evse", ts=at, changed=["powerW"], connected=True,
                          charging=charging, power_w=7000.0 + k % 7 if charging else 0.0, energy_wh=float(k * 2),
                          currents_a=[10.1, 10.2, 10.3], voltages_v=[230.0, 231.0, 229.0], online=True,
                          last_seen_at=at, raw_topic=topic("evcc", n), raw="7000", raw_seq=2 * i + 1)  # fmt: skip
        messages.append((f"telemetry.evcc.lp{n}", encode(reading)))
    batches = []
    for first in range(0, count, 20_000):
        batch = Batch()
        for seq, (subject, body) in enumerate(messages[first : first + 20_000], start=first + 1):
            batch.add_reading(seq, 0, subject, None, body)
        batches.append(batch)
    con = schema.connect(str(path))
    schema.create(con)
    started = time.perf_counter()
    for batch in batches:
        fold.apply(con, batch)
    folded = count / (time.perf_counter() - started)
    assert con.execute("SELECT count(*) FROM readings").fetchall() == [(count,)]
    tables = [batch.readings_table() for batch in batches]
    con.register("t", tables[0])
    con.execute("CREATE TABLE plain AS SELECT * FROM t WHERE false")
    con.unregister("t")
    started = time.perf_counter()
    for table in tables:
        con.register("t", table)
        con.execute("BEGIN; INSERT INTO plain SELECT * FROM t; COMMIT")
        con.unregister("t")
    appended = count / (time.perf_counter() - started)
    con.close()
    return folded, appended


async def main(messages: int, devices: int, folds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with embedded_nats(Path(tmp) / "nats", client_port=0, mqtt_port=0) as server:
            nc = await nats.connect(server.url)
            await streams.declare(nc.jetstream(), streams.Retention())
            await nc.drain()
            port = server.mqtt_port
            listener = await floor_listener(port, messages, devices)
            storing = await floor_store(server.url, messages)
            alone, _ = await through(server.url, port, Path(tmp), messages, devices, project=False)
            stored, projected = await through(server.url, port, Path(tmp), messages, devices, project=True)
        folded, appended = fold_rates(folds, devices, Path(tmp) / "fold.duckdb")
    print(f"\n{messages} MQTT messages (QoS 1, {IN_FLIGHT} in flight) over {devices} evcc loadpoints, uvloop\n")
    print("| path | messages/s | vs (a) | vs (b) |")
    print("|---|---:|---:|---:|")
    for name, rate in [
        ("(a) floor: the MQTT listener to a counting MQTT subscriber", listener),
        ("(b) floor: two stored messages per message, acks awaited", storing),
        ("MQTT → gateway → TELEMETRY, no projection running", alone),
        ("MQTT → gateway → TELEMETRY, projection running", stored),
        ("MQTT → gateway → projection (readings and devices show all)", projected),
    ]:
        print(f"| {name} | {rate:,.0f} | {rate / listener:.2f} | {rate / storing:.2f} |")
    print(f"\n{folds} readings of {devices} devices folded without a server, batches of 20 000\n")
    print("| path | readings/s | vs (c) |")
    print("|---|---:|---:|")
    print(f"| (c) floor: each batch's Arrow table appended as it is | {appended:,.0f} | 1.00 |")
    print(f"| `fold.apply`: parsed, time series, sessions, devices | {folded:,.0f} | {folded / appended:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, root, count, devs = sys.argv[2:6]
        uvloop.run(publisher(int(port), root, int(count), int(devs)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--fold", type=int, default=200_000, help="readings folded without a server")
    args = parser.parse_args()
    uvloop.run(main(args.messages, args.devices, args.fold))
