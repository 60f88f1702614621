"""Storing a frame in JetStream: nats-py's ``js.publish`` against evbus's ``Store``, in one run.

50 tasks (as 50 stations' sockets) each store frames one after the other, awaiting every ack, the
way the gateway stores what a station sends; then the same with the Store pipelining (send all,
await the acks after). Reported: Python CPU µs per stored frame in this process (the client side,
which is what evbus's processes pay) and frames/s; the nats-server runs as a child process on the
same cores. Usage: ``python -m bench.publish [--frames 20000] [--tasks 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import uvloop

from evbus.embedded_nats import embedded_nats
from evbus.publishing import Store
from schemas import streams, subjects

FRAME = b'[2,"7d4b0c5e-1f0a-4c7e-9a51-3f1e2b8d9c10","Heartbeat",{}]'


def _headers(i: int) -> dict[str, str]:
    return subjects.frame_headers(
        station="CP-BENCH",
        direction="in",
        kind="CALL",
        action="Heartbeat",
        unique_id=str(i),
        protocol="ocpp1.6",
        gateway="bench",
        connection="c0",
        received_at="2026-11-21T10:00:00.000000Z",
        msg_id=f"bench:{uuid.uuid4().hex}",
    )


async def _timed(name: str, frames: int, run: Callable[[], Awaitable[None]]) -> tuple[str, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return name, cpu / frames * 1e6, frames / wall


async def main(frames: int, tasks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with embedded_nats(Path(tmp), client_port=0, mqtt_port=0) as server:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await streams.declare(js, streams.Retention())
            store = await Store(nc).start()
            subject = subjects.ocpp_frame("CP-BENCH", "in", "Heartbeat")
            per_task = frames // tasks
            headers = [_headers(i) for i in range(per_task * tasks * 4)]
            counter = iter(headers)

            async def js_publish() -> None:
                async def one() -> None:
                    for _ in range(per_task):
                        await js.publish(subject, FRAME, headers=next(counter))

                await asyncio.gather(*(one() for _ in range(tasks)))

            async def store_awaited() -> None:
                async def one() -> None:
                    for _ in range(per_task):
                        await store.store(subject, FRAME, next(counter))

                await asyncio.gather(*(one() for _ in range(tasks)))

            async def store_pipelined() -> None:
                async def one() -> None:
                    acks = [await store.send(subject, FRAME, next(counter)) for _ in range(per_task)]
                    await asyncio.gather(*acks)

                await asyncio.gather(*(one() for _ in range(tasks)))

            await store_awaited()  # warm-up: subscriptions, stream files, the loop
            rows = [
                await _timed("js.publish, ack awaited", per_task * tasks, js_publish),
                await _timed("Store.store, ack awaited", per_task * tasks, store_awaited),
                await _timed("Store.send, pipelined", per_task * tasks, store_pipelined),
            ]
            await store.stop()
            await nc.drain()
    base = rows[0][1]
    print(f"\n{frames} frames, {tasks} concurrent tasks, event loop uvloop\n")
    print("| publish | client CPU µs/frame | ratio to js.publish | frames/s |")
    print("|---|---:|---:|---:|")
    for name, us, rate in rows:
        print(f"| {name} | {us:.1f} | {us / base:.2f} | {rate:,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    uvloop.run(main(args.frames, args.tasks))
