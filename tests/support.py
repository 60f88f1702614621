"""Test helpers: bounded waiting, reading what the stream holds, recording the wire."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import websockets
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError

from schemas import subjects

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns a truthy value or ``timeout`` passes (then fail)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


async def stored(js: JetStreamContext, subject: str, stream: str = subjects.STREAM_OCPP) -> list[Msg]:
    """Every message the stream holds on ``subject`` (a filter), in stream order."""
    info = await js.stream_info(stream, subjects_filter=subject)
    total = sum((info.state.subjects or {}).values())
    if total == 0:
        return []
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    messages: list[Msg] = []
    try:
        while len(messages) < total:
            msg = await sub.next_msg(timeout=5)
            messages.append(msg)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return messages


async def present(js: JetStreamContext, station: str) -> bool:
    """True while a gateway's presence entry (KV ``stations``) says it holds the station's socket."""
    kv = await js.key_value(subjects.BUCKET_STATIONS)
    try:
        return bool((await kv.get(subjects.kv_key(station))).value)
    except KeyNotFoundError:
        return False


async def stored_frames(js: JetStreamContext, station: str) -> list[Msg]:
    return await stored(js, subjects.ocpp_station(station))


class WireRecorder:
    """Wraps a websockets client connection and records every text frame in both directions."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.sent: list[str] = []
        self.received: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)
        await self._ws.send(message)

    async def recv(self) -> str:
        message = await self._ws.recv()
        self.received.append(message)
        return message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


@contextlib.asynccontextmanager
async def charge_point(
    url: str, station: str, protocol: str, cls: type, recorder: type[WireRecorder] = WireRecorder
) -> AsyncIterator[tuple[Any, Any]]:
    """An ``ocpp`` library ChargePoint of class ``cls`` connected to ``url``, its wire recorded."""
    async with websockets.connect(url, subprotocols=[protocol], compression=None) as ws:
        wire = recorder(ws)
        cp = cls(station, wire)
        task = asyncio.create_task(cp.start())
        try:
            yield cp, wire
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


class RawStation:
    """A bare OCPP-J client over a real websocket, for frames no well-behaved library would send."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._n = 0

    async def call(self, action: str, payload: dict[str, Any], unique_id: str | None = None) -> list[Any]:
        self._n += 1
        unique_id = unique_id or f"c{self._n}"
        await self.ws.send(msgspec.json.encode([2, unique_id, action, payload]).decode())
        return await self.recv()

    async def recv(self, timeout: float = 10.0) -> list[Any]:
        answer = await asyncio.wait_for(self.ws.recv(), timeout)
        decoded: list[Any] = msgspec.json.decode(answer)
        return decoded


async def publish_call(js: JetStreamContext, station: str, frame: list[Any], protocol: str = "ocpp1.6") -> None:
    """Publish a CALL of ours on the station's out subject, as the command processor will."""
    headers = subjects.frame_headers(
        station=station,
        direction="out",
        kind="CALL",
        action=frame[2],
        unique_id=frame[1],
        protocol=protocol,
        received_at="",
        msg_id=f"test:{station}:{frame[1]}",
    )
    await js.publish(subjects.ocpp_frame(station, "out", frame[2]), msgspec.json.encode(frame), headers=headers)
