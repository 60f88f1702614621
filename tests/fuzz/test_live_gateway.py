"""A live gateway (real NATS, processor, projection) fed mutated real frames on one socket while a
neighbour on another socket keeps sending Heartbeats.

The fuzzed station sends a fixed sequence (``random.Random(SEED)``) in lock-step: after each frame
that is owed an answer (a CALL, or a malformed frame the rules answer) it reads exactly one answer
with that frame's id; frames owed nothing get nothing (the next answer read, or the closing
sentinel Heartbeat's, would show a stray one). Then:

- every frame sent is in the stream, byte for byte and in wire order, the malformed ones on
  ``in._invalid``;
- nothing in the gateway, processor or projection logged an error (no exception escaped);
- the neighbour's Heartbeats were all answered;
- a text frame that is not UTF-8 closes the socket with 1007, as RFC 6455 says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from typing import Any

import msgspec
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from evbus.settings import Settings
from schemas import ocpp_j, subjects
from schemas.ocpp_j import Call, Malformed, MessageType
from tests.conftest import running
from tests.fuzz.mutations import change_payload_member, corpus, mutate
from tests.fuzz.tally import TRIED
from tests.support import eventually, stored_frames

pytestmark = pytest.mark.nats

SEED = 6
FRAMES = 250  # per protocol
ANSWER_TIMEOUT_S = 10.0
OUR_LOGGERS = ("gateways", "processors", "projections", "api", "evbus", "websockets")


def sequence(protocol: str, count: int = FRAMES) -> list[str | bytes]:
    """Real frames of any version: a fifth of them CALLs as recorded, a third CALLs with a payload
    member changed, dropped or added (the processor's side), the rest mutated 1 to 3 times any way;
    then the frames that once broke something, always."""
    rnd = random.Random(f"{SEED}-{protocol}")
    frames = [text for _, text in corpus()]
    calls = [text for text in frames if text.startswith("[2,")]
    out: list[str | bytes] = []
    for _ in range(count):
        dice = rnd.random()
        if dice < 0.2:
            out.append(rnd.choice(calls))
        elif dice < 0.5:
            text = rnd.choice(calls)
            for _ in range(rnd.randint(1, 3)):
                text = change_payload_member(msgspec.json.decode(text), text, rnd)
            out.append(text)
        else:
            out.append(mutate(rnd.choice(frames), rnd, rnd.choice([1, 1, 2, 3])))
    return out + REGRESSIONS


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


REGRESSIONS: list[str | bytes] = [
    # nesting past the JSON decoder's recursion limit: RecursionError escaped parse, the socket died
    _nested(5000),
    '[2,"deep-1","Heartbeat",{"data":' + _nested(3000) + "}]",
    # nesting the decoder takes but the schema validator does not: the processor's lane died
    '[2,"deep-2","MeterValues",{"connectorId":1,"meterValue":[],"data":' + _nested(500) + "}]",
    '[2,"deep-3","DataTransfer",{"vendorId":"v","data":' + _nested(900) + "}]",
    '[2,"deep-4","TransactionEvent",{"data":' + _nested(200) + "}]",
    '[2,"big-1","Heartbeat",{"n":1' + "0" * 5000 + "}]",  # past the 4300-digit int limit
    '[2,"dup-1","Heartbeat",{"a":1,"a":2}]',
    '[2,"' + "x" * 20000 + '","Heartbeat",{}]',
    '\ufeff[2,"bom-1","Heartbeat",{}]',
    '[2,"nul-1","DataTransfer",{"vendorId":"v\\u0000","data":"\\u0000"}]',
]


def owed(data: str | bytes, protocol: str, max_frame_bytes: int) -> tuple[str | None, bool]:
    """(id of the answer this frame is owed or None, whether it belongs on ``in._invalid``)."""
    if isinstance(data, bytes):
        return ocpp_j.UNREADABLE_ID, True
    if len(data) > max_frame_bytes:
        return ocpp_j.too_large(data, max_frame_bytes, protocol).unique_id, True  # type: ignore[arg-type]
    message = ocpp_j.parse(data, protocol)  # type: ignore[arg-type]
    if isinstance(message, Call):
        return (message.unique_id if message.type == MessageType.CALL else None), False
    if isinstance(message, Malformed):
        return (message.unique_id if message.answer is not None else None), True
    return None, True  # a CALLRESULT/CALLERROR for no CALL of ours


async def neighbour(url: str, stop: asyncio.Event) -> tuple[int, int]:
    """Heartbeats every 100 ms until ``stop``: (sent, answered)."""
    sent = answered = 0
    async with websockets.connect(url, subprotocols=["ocpp1.6"], compression=None) as ws:
        while not stop.is_set():
            sent += 1
            await ws.send(ocpp_j.call(f"hb-{sent}", "Heartbeat", {}))
            answer = msgspec.json.decode(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
            if answer[:2] == [3, f"hb-{sent}"] and "currentTime" in answer[2]:
                answered += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    return sent, answered


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_mutated_frames_on_a_live_gateway(
    settings: Settings, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    frames = sequence(protocol)
    run = uuid.uuid4().hex[:8]
    station, other = f"FUZZ-{run}", f"NEIGHBOUR-{run}"
    async with running(settings, api=True) as stack:
        stop = asyncio.Event()
        beside = asyncio.create_task(neighbour(stack.url(other), stop))
        answered, invalid = 0, 0
        try:
            async with websockets.connect(stack.url(station), subprotocols=[protocol], compression=None) as ws:
                for n, data in enumerate(frames):
                    await ws.send(data)
                    TRIED["frames sent to a live gateway"] += 1
                    unique_id, is_invalid = owed(data, protocol, settings.max_frame_bytes)
                    invalid += is_invalid
                    if unique_id is None:
                        continue
                    try:
                        raw = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
                    except TimeoutError:
                        pytest.fail(f"frame {n} owed an answer {unique_id!r}, none came: {data[:300]!r}")
                    answer = msgspec.json.decode(raw)
                    assert answer[0] in (3, 4), (n, data[:300], answer)
                    assert answer[1] == unique_id, (n, data[:300], answer)
                    answered += 1
                await ws.send(ocpp_j.call("sentinel", "Heartbeat", {}))  # a stray answer would come first
                last = msgspec.json.decode(await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S))
                assert last[:2] == [3, "sentinel"], last

                # a text frame that is not UTF-8: the websocket layer closes with 1007 (RFC 6455 §8.1)
                await ws.send(b'[2,"u1","Heartbeat",{"x":"\xff"}]', text=True)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT_S)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1007
        finally:
            stop.set()
            sent, beats = await beside
        assert sent == beats > 0, "the neighbour's heartbeats were not all answered"

        expected = [d if isinstance(d, bytes) else d.encode() for d in frames]
        expected.append(ocpp_j.call("sentinel", "Heartbeat", {}).encode())

        async def all_stored() -> list[Any]:
            inbound = [
                m for m in await stored_frames(stack.js, station) if (m.headers or {}).get(subjects.H_DIRECTION) == "in"
            ]
            return inbound if len(inbound) >= len(expected) else []

        inbound = await eventually(all_stored)
        assert [m.data for m in inbound] == expected  # every frame, byte for byte, in wire order
        assert sum(m.subject.endswith(f".in.{subjects.INVALID}") for m in inbound) == invalid
        await stack.projected(timeout=30)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(OUR_LOGGERS)]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]
    print(f"{protocol}: {len(frames)} mutated frames sent, {answered} answers, {invalid} stored as invalid")
