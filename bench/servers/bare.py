"""The bare server: websockets parsing and answering OCPP-J, nothing else — the cost of the socket work.

    .venv/bin/python -m bench.servers.bare [--port 0] [--loop uvloop|asyncio]

Each text frame is decoded with msgspec; a CALL gets its CALLRESULT (BootNotification, Heartbeat,
StatusNotification, MeterValues in 1.6 and 2.0.1 shape; anything else ``{}``). Nothing is stored.
Same listener settings as the evbus gateway: ``compression=None``, subprotocols newest first.
"""

from __future__ import annotations

import argparse
import asyncio

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


async def handle(ws: ServerConnection) -> None:
    if ws.request is None or station_id(ws.request.path) is None or ws.subprotocol is None:
        await ws.close(1002, "no station id or subprotocol")
        return
    protocol = ws.subprotocol
    async for data in ws:
        call = parse_call(data)
        if call is None:
            continue
        await ws.send(call_result(call.unique_id, answer_payload(protocol, call.action)).decode())
        Answered.one(call.action)


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    async with serve(handle, args.host, args.port, subprotocols=SUBPROTOCOLS, compression=None) as server:
        announce(args.host, next(iter(server.sockets)).getsockname()[1])
        await stop.wait()


if __name__ == "__main__":
    run(main, arguments(__doc__ or "", default_loop="uvloop"))
