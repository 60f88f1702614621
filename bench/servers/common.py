"""What the comparison servers share: the command line, the event loop, the harness's control
channel, and the answers a CSMS gives to the calls of the round-trip load.

Every server prints ``listening ws://HOST:PORT/ocpp`` on stdout once it accepts connections. The
harness then writes ``count`` lines to its stdin and reads ``count N B`` back: N answers sent so
far, B of them to BootNotifications. That is how the harness knows the stations have booted and
counts the round trips inside its CPU window (a thread blocked on stdin costs nothing while the
load runs). End of stdin or SIGTERM stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from websockets.typing import Subprotocol

from evbus.clock import rfc3339, utc_now

# the server's order wins when several match: newest first, as the evbus gateway
SUBPROTOCOLS: Final = [Subprotocol("ocpp2.1"), Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")]
HEARTBEAT_INTERVAL: Final = 300
MAX_ID_LENGTH: Final = 48


class Answered:
    """How many answers this server has sent; read by the control thread, written by the loop."""

    count = 0
    boots = 0

    @classmethod
    def one(cls, action: str) -> None:
        cls.count += 1
        if action == "BootNotification":
            cls.boots += 1


def station_id(path: str) -> str | None:
    """The station id of ``/ocpp/{id}`` or ``/{id}``, percent-decoded; None when there is none."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if not segments or len(segments) > 2 or (len(segments) == 2 and segments[0] != "ocpp"):
        return None
    station = urllib.parse.unquote(segments[-1])
    return station if 0 < len(station) <= MAX_ID_LENGTH else None


class Frame(msgspec.Struct, array_like=True):
    """A station CALL: ``[2, uniqueId, action, payload]``."""

    type: int
    unique_id: str
    action: str
    payload: dict[str, Any]


_decode_call = msgspec.json.Decoder(Frame).decode
_encode = msgspec.json.Encoder().encode


def parse_call(data: str | bytes) -> Frame | None:
    """The CALL in ``data``; None for anything else (results, errors, malformed text)."""
    try:
        frame = _decode_call(data)
    except msgspec.DecodeError:
        return None
    return frame if frame.type == 2 else None


def answer_payload(protocol: str, action: str) -> dict[str, Any]:
    """The CSMS's answer to the round-trip load's calls, in 1.6 and 2.0.1/2.1 shape; ``{}`` otherwise."""
    if action == "Heartbeat":
        return {"currentTime": rfc3339(utc_now())}
    if action == "BootNotification":
        if protocol == "ocpp1.6":
            return {"status": "Accepted", "currentTime": rfc3339(utc_now()), "interval": HEARTBEAT_INTERVAL}
        return {"currentTime": rfc3339(utc_now()), "interval": HEARTBEAT_INTERVAL, "status": "Accepted"}
    return {}  # StatusNotification, MeterValues (both versions) and anything else: an empty CALLRESULT


def call_result(unique_id: str, payload: dict[str, Any]) -> bytes:
    return _encode([3, unique_id, payload])


def arguments(description: str, default_loop: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free one")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=default_loop)
    parser.add_argument("--data-dir", help="where a server keeps files (the floor's JetStream store); default: temp")
    return parser.parse_args()


def run(main: Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]], args: argparse.Namespace) -> None:
    """Run ``main(args, stop)`` on the loop ``--loop`` names; ``stop`` is set by SIGTERM/SIGINT or end of stdin."""

    async def supervised() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        threading.Thread(target=_control, args=(running, stop), daemon=True, name="control").start()
        await main(args, stop)

    if args.loop == "uvloop":
        import uvloop

        uvloop.run(supervised())
    else:
        asyncio.run(supervised())


def announce(host: str, port: int) -> None:
    print(f"listening ws://{host}:{port}/ocpp", flush=True)


def _control(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "count":
            sys.stdout.write(f"count {Answered.count} {Answered.boots}\n")
            sys.stdout.flush()
    loop.call_soon_threadsafe(stop.set)
