"""Real traffic from four independent charge-point implementations (tests/vectors/, copied from the
project's shared vectors) replayed through a real gateway and processor.

Each station's recorded frames are sent in their original order: every CALL it made must get a
schema-valid CALLRESULT from evbus; every command the stand-in CSMS sent it is published on the
station's out subject (as the command processor will) and the station's recorded answer must come
back paired with its action. The recorded csms->cp answers are not a reference and are not used.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
import websockets

from schemas import payloads, subjects
from tests.conftest import Stack
from tests.support import RawStation, eventually, publish_call, stored, stored_frames

pytestmark = pytest.mark.nats

VECTORS = sorted((Path(__file__).parent / "vectors").glob("*.jsonl"))


def sessions(path: Path) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """station → (subprotocol, its records in order)."""
    protocol: dict[str, str] = {}
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["dir"] == "connect":
            protocol.setdefault(record["station"], record["frame"]["subprotocol"])
        elif record["dir"] in ("cp->csms", "csms->cp"):
            records[record["station"]].append(record)
    return {station: (protocol[station], frames) for station, frames in records.items()}


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
async def test_real_charge_point_traffic_is_answered_and_paired(stack: Stack, path: Path) -> None:
    run = uuid.uuid4().hex[:6]
    for recorded_id, (protocol, records) in sessions(path).items():
        station = f"{run}-{recorded_id}"
        commands: dict[str, str] = {}
        async with websockets.connect(stack.url(station), subprotocols=[protocol], compression=None) as ws:
            cp = RawStation(ws)
            for record in records:
                frame = record["frame"]
                if record["dir"] == "cp->csms" and frame[0] == 2:
                    text = msgspec.json.encode(frame).decode()
                    await ws.send(text)
                    answer = await cp.recv()
                    assert answer[:2] == [3, frame[1]], (station, frame, answer)
                    assert payloads.validate(protocol, frame[2], answer[2], "response") is None, (frame[2], answer)
                elif record["dir"] == "csms->cp" and frame[0] == 2:
                    commands[frame[1]] = frame[2]
                    await publish_call(stack.js, station, frame, protocol)
                    received = await cp.recv()
                    assert received == frame
                elif record["dir"] == "cp->csms":  # the station's answer to a command
                    await ws.send(msgspec.json.encode(frame).decode())
        for unique_id, action in commands.items():

            async def answer_stored(action: str = action, unique_id: str = unique_id, station: str = station) -> bool:
                results = await stored(stack.js, subjects.ocpp_frame(station, "in", action))
                return any(m.headers[subjects.H_ID] == unique_id for m in results)

            await eventually(answer_stored)
        frames = await stored_frames(stack.js, station)
        assert not [m for m in frames if m.subject.endswith("._invalid")], station
