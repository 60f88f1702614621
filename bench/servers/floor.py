"""The floor: the bare server plus what evbus must do at least — store both frames in JetStream.

    .venv/bin/python -m bench.servers.floor [--port 0] [--loop uvloop|asyncio] [--data-dir DIR]

Per station CALL, in order: publish the inbound frame to ``ocpp.{station}.in.{action}`` and await
its ack; build the CALLRESULT; publish it to ``ocpp.{station}.out.{action}`` and **await that ack
too**; then send it. Awaiting the outbound ack is the honest floor for evbus, whose answers are
stored before they are sent. Both publishes carry the headers evbus writes
(``schemas.subjects.frame_headers``, a ``Nats-Msg-Id`` per frame), so the bytes per message and the
de-duplication work in nats-server are the same. They go through ``evbus.publishing.Store``, the
cheapest way to store a frame that we know (0.61x the client CPU of nats-py's ``js.publish``,
bench/publish.py), so evbus is measured against the floor it could reach, not a softer one.

nats-server is this process's child, started by ``evbus.embedded_nats`` from the same nats.conf
with the evbus streams and buckets declared (``schemas.streams.declare``), so storage costs what it
costs under evbus. What the floor leaves out is evbus's architecture: no consumer delivering frames
to a processor and taking its acks, no per-station subscription for the answers, no schema
validation, no presence or connection events, no projection and no API.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from websockets.asyncio.server import ServerConnection, serve

from bench.servers.common import (
    SUBPROTOCOLS,
    Answered,
    announce,
    answer_payload,
    arguments,
    call_result,
    parse_call,
    run,
    station_id,
)
from evbus.clock import rfc3339, utc_now
from evbus.embedded_nats import embedded_nats
from evbus.publishing import Store
from schemas import streams, subjects

GATEWAY = "floor"


def handler(store: Store) -> Callable[[ServerConnection], Awaitable[None]]:
    async def handle(ws: ServerConnection) -> None:
        station = station_id(ws.request.path) if ws.request else None
        protocol = ws.subprotocol
        if station is None or protocol is None:
            await ws.close(1002, "no station id or subprotocol")
            return
        connection = secrets.token_hex(6)
        frames = 0

        def headers(direction: subjects.Direction, kind: str, action: str, unique_id: str) -> dict[str, str]:
            nonlocal frames
            frames += 1
            return subjects.frame_headers(
                station=station,
                direction=direction,
                kind=kind,
                action=action,
                unique_id=unique_id,
                protocol=protocol,
                gateway=GATEWAY,
                connection=connection,
                received_at=rfc3339(utc_now()),
                msg_id=f"{GATEWAY}:{connection}:{frames}",
            )

        async for data in ws:
            call = parse_call(data)
            if call is None:
                continue
            body = data.encode() if isinstance(data, str) else data
            subject = subjects.ocpp_frame(station, "in", call.action)
            await store.store(subject, body, headers("in", "CALL", call.action, call.unique_id))
            answer = call_result(call.unique_id, answer_payload(protocol, call.action))
            subject = subjects.ocpp_frame(station, "out", call.action)
            await store.store(subject, answer, headers("out", "CALLRESULT", call.action, call.unique_id))
            await ws.send(answer.decode())
            Answered.one(call.action)

    return handle


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    with tempfile.TemporaryDirectory(prefix="floor-", dir=args.data_dir) as data_dir:
        async with embedded_nats(Path(data_dir), "127.0.0.1", client_port=0, mqtt_port=0) as server:
            nc = await nats.connect(server.url, name="floor")
            try:
                await streams.declare(nc.jetstream(), streams.Retention())
                store = await Store(nc).start()
                async with serve(
                    handler(store),
                    args.host,
                    args.port,
                    subprotocols=SUBPROTOCOLS,
                    compression=None,
                ) as ws_server:
                    announce(args.host, next(iter(ws_server.sockets)).getsockname()[1])
                    await stop.wait()
            finally:
                await nc.drain()


if __name__ == "__main__":
    run(main, arguments(__doc__ or "", default_loop="uvloop"))
