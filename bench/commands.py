"""Operator commands: latency and throughput of the command path, against its floor in the same run.

    .venv/bin/python -m bench.commands [--commands 400] [--stations 10] [--concurrency 50]

One process runs a fresh nats-server (own data directory, free ports), the gateway, the processors
and the API (with its projection), and ``--stations`` bare websocket stations that answer every
CALL with ``{"status": "Accepted"}`` at once (no ``ocpp`` library: the station costs next to
nothing). Then, each sequentially (latency) and with ``--concurrency`` in flight (throughput):

(a) floor: what any command path must do at least — store the CALL on ``ocpp.{station}.out.Reset``
    (the gateway sends it) and wait for the station's answer on ``ocpp.{station}.in.>`` (stored by
    the gateway), with a bare nats-py client;
(b) ``cmd.{station}.Reset`` as a NATS request: (a) plus presence, schema validation, three
    ``events.command.*`` events and the reply;
(c) ``POST /api/stations/{id}/commands/reset`` over HTTP: (b) plus the named-command mapping,
    auth and Litestar.

Read the ratios: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import msgspec
import websockets

from evbus import bootstrap
from evbus.embedded_nats import embedded_nats
from evbus.publishing import Store
from evbus.settings import Settings
from schemas import subjects

TOKEN = "bench-token"  # noqa: S105 - the bench's own throwaway API token


async def station(url: str, name: str, stop: asyncio.Event) -> None:
    async with websockets.connect(f"{url}/{name}", subprotocols=["ocpp1.6"], compression=None) as ws:  # type: ignore[list-item]
        boot = '[2,"b","BootNotification",{"chargePointVendor":"bench","chargePointModel":"b"}]'
        await ws.send(boot)
        await ws.recv()
        reader = asyncio.ensure_future(stop.wait())
        while not stop.is_set():
            recv = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({recv, reader}, return_when=asyncio.FIRST_COMPLETED)
            if recv not in done:
                recv.cancel()
                break
            frame = msgspec.json.decode(recv.result())
            if frame[0] == 2:
                await ws.send(msgspec.json.encode([3, frame[1], {"status": "Accepted"}]).decode())


async def measure(name: str, one: Callable[[int], Awaitable[None]], n: int, concurrency: int) -> dict[str, float]:
    latencies = []
    for i in range(n):
        t = time.perf_counter()
        await one(i)
        latencies.append((time.perf_counter() - t) * 1000)
    gate = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with gate:
            await one(i)

    t = time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(n)))
    rate = n / (time.perf_counter() - t)
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rate": rate,
    }


@contextlib.asynccontextmanager
async def site(data: Path) -> AsyncIterator[tuple[bootstrap.Running, Settings]]:
    async with embedded_nats(data / "nats", client_port=0, mqtt_port=0) as server:
        settings = Settings(
            nats_url=server.url,
            ocpp_host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            api_token=TOKEN,
            data_dir=data,
            log_level="WARNING",
        )
        async with bootstrap.stack(settings) as running:
            yield running, settings


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="evbus-bench-commands-") as tmp:
        async with site(Path(tmp)) as (running, _settings):
            assert running.ocpp_url
            assert running.api_url
            nc = running.bus.nc
            names = [f"BENCH-{i:03d}" for i in range(args.stations)]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(station(running.ocpp_url, n, stop)) for n in names]
            kv = await nc.jetstream().key_value(subjects.BUCKET_STATIONS)
            for n in names:  # connected: presence written
                while True:
                    with contextlib.suppress(Exception):
                        await kv.get(subjects.kv_key(n))
                        break
                    await asyncio.sleep(0.02)
            store = await Store(nc).start()
            waiting: dict[str, asyncio.Future[None]] = {}

            async def on_answer(msg: object) -> None:
                found = waiting.pop((msg.headers or {}).get(subjects.H_ID, ""), None)  # type: ignore[attr-defined]
                if found is not None and not found.done():
                    found.set_result(None)

            await nc.subscribe("ocpp.*.in.>", cb=on_answer)

            async def floor(i: int) -> None:
                name = names[i % len(names)]
                unique_id = str(uuid.uuid4())
                done = asyncio.get_running_loop().create_future()
                waiting[unique_id] = done
                headers = subjects.frame_headers(
                    station=name,
                    direction="out",
                    kind="CALL",
                    action="Reset",
                    unique_id=unique_id,
                    protocol="ocpp1.6",
                    received_at="",
                    msg_id=f"bench:{unique_id}",
                )
                frame = f'[2,"{unique_id}","Reset",{{"type":"Soft"}}]'.encode()
                await store.store(subjects.ocpp_frame(name, "out", "Reset"), frame, headers)
                await asyncio.wait_for(done, 10)

            async def nats_command(i: int) -> None:
                msg = await nc.request(subjects.command(names[i % len(names)], "Reset"), b'{"type":"Soft"}', timeout=10)
                assert b'"outcome":"answered"' in msg.data, msg.data

            http = httpx.AsyncClient(
                base_url=running.api_url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
                limits=httpx.Limits(max_connections=args.concurrency),
            )

            async def rest_command(i: int) -> None:
                r = await http.post(f"/api/stations/{names[i % len(names)]}/commands/reset", json={"type": "soft"})
                assert r.status_code == 200, r.text

            await measure("warm-up", rest_command, 20, 5)
            results = {}
            for name, one in (("floor", floor), ("nats cmd", nats_command), ("REST", rest_command)):
                results[name] = await measure(name, one, args.commands, args.concurrency)
            await http.aclose()
            stop.set()
            for t in tasks:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
            await store.stop()
    base = results["floor"]
    print(f"\n{args.commands} commands over {args.stations} stations; throughput at {args.concurrency} in flight\n")
    print("| path | p50 ms | p99 ms | p50 vs floor | commands/s | vs floor |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50'] / base['p50']:.2f}x | "
            f"{r['rate']:.0f} | {r['rate'] / base['rate']:.2f}x |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=400)
    parser.add_argument("--stations", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
