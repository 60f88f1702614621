"""SSE fan-out: publish-to-client latency and the throughput ceiling, against a floor in the same run.

    .venv/bin/python -m bench.sse [--clients 1000] [--rates 50,100,200,400] [--seconds 8]

A fresh nats-server (own data directory, free ports) and ``evbus api`` as its own process (the
SSE hubs and the projection). This process publishes Heartbeat CALLs of one station onto the OCPP
stream, each carrying ``time.time_ns()``, at a steady rate, and reads them back:

(a) floor: a nats-py core subscriber of the same subject in this process: what any subscriber of
    the bus sees, no storage, no HTTP, no fan-out;
(b) ``GET /api/messages/stream?identity=…`` with one client, then with ``--clients`` clients (raw
    sockets, one per stream, in a process of their own; every 10th client times each event, all
    count them).

Latency is publish call to event read by the client, on one clock. The ceiling is the highest
rate at which every client got every event, with no ``overflow``. Three processes (API, clients,
this one with nats-server) share the machine's cores: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nats.aio.client import Client as NATS

from evbus.embedded_nats import embedded_nats
from evbus.settings import environment
from schemas import streams, subjects

TOKEN = "bench-token"  # noqa: S105 - the bench's own throwaway API token
STATION = "bench-sse"
_STAMP = re.compile(rb'"t":(\d+)')
TIMED_EVERY = 10  # every 10th client times each event; the others count them (parsing is the clients' cost)


@dataclass
class Client:
    latencies_ns: list[int] = field(default_factory=list)
    events: int = 0
    overflowed: bool = False


class SseClient(asyncio.Protocol):
    """One SSE client as a protocol (data_received, no task and no stream reader per socket), so
    the 1000 clients' own process adds as little as it can to the latency it measures."""

    def __init__(self, client: Client, ready: asyncio.Event, timed: bool) -> None:
        self.client, self.ready, self.timed = client, ready, timed
        self.buffer = b""
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, chunk: bytes) -> None:
        now = time.time_ns()
        if not self.ready.is_set() and b"event: connected" in chunk:
            self.ready.set()
        self.buffer += chunk
        events, _, self.buffer = self.buffer.rpartition(b"\n\n")
        if self.timed:
            for stamp in _STAMP.findall(events):
                self.client.latencies_ns.append(now - int(stamp))
        self.client.events += events.count(b"event: message")
        if b"event: overflow" in events:
            self.client.overflowed = True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def sse_client(port: int, client: Client, ready: asyncio.Event, timed: bool) -> None:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(lambda: SseClient(client, ready, timed), "127.0.0.1", port)
    transport.write(
        f"GET /api/messages/stream?identity={STATION} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    try:
        await protocol.closed
    finally:
        transport.close()


async def floor_client(nc: NATS, client: Client) -> Any:
    async def take(msg) -> None:  # type: ignore[no-untyped-def]
        now = time.time_ns()
        found = _STAMP.search(msg.data)
        if found:
            client.latencies_ns.append(now - int(found.group(1)))
            client.events += 1

    return await nc.subscribe(subjects.ocpp_station(STATION), cb=take)


async def publish(nc: NATS, rate: float, seconds: float) -> int:
    """Heartbeat CALLs at ``rate`` per second for ``seconds``; returns how many."""
    js = nc.jetstream()
    subject = subjects.ocpp_frame(STATION, "in", "Heartbeat")
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    pending = []
    while (elapsed := loop.time() - start) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            sent += 1
            uid = f"b{sent}-{time.monotonic_ns()}"
            headers = subjects.frame_headers(
                station=STATION, direction="in", kind="CALL", action="Heartbeat", unique_id=uid,
                protocol="ocpp1.6", msg_id=f"bench:{uid}", received_at="2026-11-21T00:00:00.000000Z",
            )  # fmt: skip
            frame = msgspec.json.encode([2, uid, "Heartbeat", {"t": time.time_ns()}])
            pending.append(await js.publish_async(subject, frame, headers=headers))
        await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    for future in pending:
        await future
    return sent


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


async def clients_process(port: int, count: int) -> None:
    """The clients, in a process of their own: ``ready`` on stdout once all are connected, then,
    given the number of events sent on stdin, the results as JSON once all have them (or 20 s)."""
    many = [Client() for _ in range(count)]
    readies = [asyncio.Event() for _ in many]
    tasks = []
    for i, (c, ready) in enumerate(zip(many, readies, strict=True)):
        timed = i % TIMED_EVERY == 0
        tasks.append(asyncio.create_task(sse_client(port, c, ready, timed)))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0.01)  # let the accepts keep up
    async with asyncio.timeout(60):
        for ready in readies:
            await ready.wait()
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    sent = int(line)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(  # noqa: ASYNC110 - counters other tasks move
        c.events < sent and not c.overflowed and not t.done() for c, t in zip(many, tasks, strict=True)
    ):
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await t
    result = {
        "latencies_ns": [x for c in many for x in c.latencies_ns],
        "events": [c.events for c in many],
        "overflowed": sum(c.overflowed for c in many),
    }
    print(msgspec.json.encode(result).decode(), flush=True)


async def measure(nc: NATS, port: int, clients: int, rate: float, seconds: float) -> tuple[Client, dict[str, Any], int]:
    floor = Client()
    sub = await floor_client(nc, floor)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.sse", "--serve-clients", str(port), "--clients", str(clients),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    async with asyncio.timeout(90):
        assert (await process.stdout.readline()).strip() == b"ready"
    sent = await publish(nc, rate, seconds)
    process.stdin.write(f"{sent}\n".encode())
    await process.stdin.drain()
    async with asyncio.timeout(60):
        result = msgspec.json.decode(await process.stdout.readline())
        await process.wait()
    async with asyncio.timeout(20):
        while floor.events < sent:  # noqa: ASYNC110 - a counter the subscription moves
            await asyncio.sleep(0.05)
    await sub.unsubscribe()
    return floor, result, sent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rates", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--serve-clients", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_clients:
        await clients_process(args.serve_clients, args.clients)
        return
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        async with embedded_nats(Path(tmp) / "nats", client_port=0, mqtt_port=0) as server:
            nc = NATS()
            await nc.connect(server.url)
            await streams.declare(nc.jetstream())
            port = free_port()
            env = environment(
                nats_url=server.url, api_port=port, api_token=TOKEN, data_dir=Path(tmp) / "api",
                sse_clients_per_token=args.clients + 10, log_level="WARNING",
            )  # fmt: skip
            api = await asyncio.create_subprocess_exec(sys.executable, "-m", "evbus.cli", "api", env=env)
            try:
                async with httpx.AsyncClient() as http:
                    for _ in range(300):
                        with contextlib.suppress(httpx.HTTPError):
                            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                                break
                        await asyncio.sleep(0.1)
                print(f"SSE fan-out, {os.cpu_count()} CPUs, {args.seconds:.0f} s per run\n")
                print("| clients | rate/s | floor p50/p99 | SSE p50 | SSE p99 | p99 x floor | events/s | all got all |")
                print("|---|---|---|---|---|---|---|---|")
                for clients, rate in [(1, rates[0]), *((args.clients, r) for r in rates)]:
                    floor, result, sent = await measure(nc, port, clients, rate, args.seconds)
                    lat = result["latencies_ns"]
                    overflows = result["overflowed"]
                    complete = all(n >= sent for n in result["events"]) and not overflows
                    f50, f99 = percentile(floor.latencies_ns, 0.5), percentile(floor.latencies_ns, 0.99)
                    s50, s99 = percentile(lat, 0.5), percentile(lat, 0.99)
                    delivered = sum(result["events"]) / args.seconds
                    verdict = "yes" if complete else f"no ({overflows} overflowed)"
                    print(
                        f"| {clients} | {rate:.0f} | {f50:.1f}/{f99:.1f} ms | {s50:.1f} ms | {s99:.1f} ms "
                        f"| {s99 / f99:.1f}x | {delivered:,.0f} | {verdict} |",
                        flush=True,
                    )
                    if statistics.fmean(result["events"]) < sent * 0.5:
                        break  # far past the ceiling
            finally:
                api.terminate()
                await api.wait()
            await nc.close()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
