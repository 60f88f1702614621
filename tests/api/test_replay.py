"""The record as it was: `GET /api/replay` and `evbus replay` serve a station's stored messages byte
for byte, in stream order, with their headers; and `DELETE /api/connections/{id}` forgets only the
closed connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import pytest
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16

from evbus import cli
from schemas import subjects
from tests.api.test_sessions import connected
from tests.conftest import Stack, running, stack_settings
from tests.support import WireRecorder, charge_point, eventually, stored_frames


class OrderedWire(WireRecorder):
    """A wire recorder that also keeps both directions in one list, in the order they happened."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.frames: list[tuple[str, str]] = []

    async def send(self, message: str) -> None:
        self.frames.append(("in", message))
        await super().send(message)

    async def recv(self) -> str:
        message = await super().recv()
        self.frames.append(("out", message))
        return message


@dataclass
class Recorded:
    stack: Stack
    station: str
    wire: list[tuple[str, str]]  # (direction, frame text) as the station sent and received them


@pytest.fixture(scope="module")
async def recorded(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    """One stack and one short, finished 1.6 session on the wire for the whole module."""
    station = f"CP-{uuid.uuid4().hex[:10]}"
    async with running(stack_settings(nats_url, tmp_path_factory.mktemp("replay")), api=True) as stack:
        wire = await short_session(stack, station)
        await wait_until_closed(stack, station)
        yield Recorded(stack, station, wire)


async def short_session(stack: Stack, station: str) -> list[tuple[str, str]]:
    async with charge_point(stack.url(station), station, "ocpp1.6", ChargePoint16, OrderedWire) as (cp, recorder):
        await cp.call(call16.BootNotification(charge_point_vendor="replay", charge_point_model="wire"))
        await cp.call(call16.Heartbeat())
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        await cp.call(call16.DataTransfer(vendor_id="evbus", message_id="echo", data='{"ü": "ß \\"quoted\\""}'))
        await cp.call(call16.Heartbeat())
    return recorder.frames


async def wait_until_closed(stack: Stack, station: str) -> None:
    async def disconnected() -> bool:
        return any(m.subject.endswith(".conn.disconnected") for m in await stored_frames(stack.js, station))

    await eventually(disconnected)
    await stack.projected()


async def replay_lines(stack: Stack, **params: str) -> list[dict[str, Any]]:
    async with stack.http() as api:
        response = await api.get("/api/replay", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.content == b"" or response.content.endswith(b"\n")
    return [msgspec.json.decode(line) for line in response.content.splitlines()]


def frame_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if ".conn." not in line["subject"]]


# --- GET /api/replay --------------------------------------------------------------------------


async def test_replay_is_every_stored_message_as_on_the_wire(recorded: Recorded) -> None:
    stack, station = recorded.stack, recorded.station
    lines = await replay_lines(stack, identity=station)

    # one line per stored message of the station, in stream order, with subject and headers
    stored = await stored_frames(stack.js, station)
    assert [line["seq"] for line in lines] == [m.metadata.sequence.stream for m in stored]
    assert [line["subject"] for line in lines] == [m.subject for m in stored]
    assert [line["headers"] for line in lines] == [m.headers for m in stored]
    assert [line["data"].encode() for line in lines] == [m.data for m in stored]
    assert lines[0]["subject"] == subjects.ocpp_conn(station, "connected")
    assert lines[-1]["subject"] == subjects.ocpp_conn(station, "disconnected")

    # the frames are the wire's, byte for byte, in the order they crossed it
    frames = frame_lines(lines)
    assert [(f["headers"][subjects.H_DIRECTION], f["data"].encode()) for f in frames] == [
        (direction, text.encode()) for direction, text in recorded.wire
    ]
    assert len(frames) == 10
    for f in frames:
        assert f["headers"][subjects.H_STATION] == station
        assert f["headers"][subjects.H_PROTOCOL] == "ocpp1.6"
        assert f["subject"] == subjects.ocpp_frame(
            station, f["headers"][subjects.H_DIRECTION], f["headers"][subjects.H_ACTION]
        )
    times = [moment(line["time"]) for line in lines]
    assert times == sorted(times)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def between(a: dict[str, Any], b: dict[str, Any]) -> str:
    """A moment strictly between two stored messages (their times are rounded to microseconds)."""
    first, second = moment(a["time"]), moment(b["time"])
    assert (second - first).total_seconds() > 4e-6, "messages too close to cut between"
    return (first + (second - first) / 2).isoformat()


async def test_since_and_until_narrow_the_window(recorded: Recorded) -> None:
    stack, station = recorded.stack, recorded.station
    lines = await replay_lines(stack, identity=station)
    assert len(lines) == 12
    since, until = between(lines[2], lines[3]), between(lines[8], lines[9])
    assert await replay_lines(stack, identity=station, since=since) == lines[3:]
    assert await replay_lines(stack, identity=station, until=until) == lines[:9]
    assert await replay_lines(stack, identity=station, since=since, until=until) == lines[3:9]
    assert await replay_lines(stack, identity=station, since=until, until=since) == []
    naive = {"since": since.removesuffix("+00:00"), "until": until.removesuffix("+00:00")}  # UTC, as OCPP
    assert await replay_lines(stack, identity=station, **naive) == lines[3:9]
    assert await replay_lines(stack, identity=station, since="2100-01-01T00:00:00Z") == []
    assert await replay_lines(stack, identity=station, since="2999-01-01T00:00:00Z") == []  # past int64 ns
    assert await replay_lines(stack, identity=station, until="2100-01-01T00:00:00Z") == lines
    assert await replay_lines(stack, identity=station, since="2000-01-01T00:00:00Z") == lines


# --- evbus replay -----------------------------------------------------------------------------


async def run_cli(monkeypatch: pytest.MonkeyPatch, stack: Stack, *argv: str) -> int:
    monkeypatch.setenv("EVBUS_NATS_URL", stack.settings.nats_url or "")
    return await asyncio.to_thread(cli.main, list(argv))


async def test_cli_replay_ndjson_is_the_apis(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    stack, station = recorded.stack, recorded.station
    assert await run_cli(monkeypatch, stack, "replay", station, "--format", "ndjson") == 0
    out = capsysbinary.readouterr().out
    async with stack.http() as api:
        assert out == (await api.get("/api/replay", params={"identity": station})).content
    frames = frame_lines([msgspec.json.decode(line) for line in out.splitlines()])
    assert [(f["headers"][subjects.H_DIRECTION], f["data"]) for f in frames] == recorded.wire


async def test_cli_replay_pretty_prints_every_frame(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, station = recorded.stack, recorded.station
    lines = await replay_lines(stack, identity=station)
    assert await run_cli(monkeypatch, stack, "replay", station) == 0
    captured = capsys.readouterr()
    printed = captured.out.splitlines()
    assert len(printed) == len(lines)
    for text, line in zip(printed, lines, strict=True):
        assert f" #{line['seq']} " in text
        assert text.endswith(" " + line["data"])
        assert "\033[" not in text  # no colours when stdout is not a terminal
        headers = line["headers"]
        if ".conn." in line["subject"]:
            assert " • CONN " in text
        else:
            arrow = "→" if headers[subjects.H_DIRECTION] == "in" else "←"
            assert f" {arrow} {headers[subjects.H_TYPE]} {headers[subjects.H_ACTION]} " in text
            assert text.startswith(headers[subjects.H_RECEIVED_AT])
    assert f"{len(lines)} frames of {station!r}" in captured.err


async def test_cli_replay_since_narrows_like_the_api(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    stack, station = recorded.stack, recorded.station
    lines = await replay_lines(stack, identity=station)
    since, until = between(lines[4], lines[5]), between(lines[6], lines[7])
    argv = ["replay", station, "--format", "ndjson", "--since", since, "--until", until]
    assert await run_cli(monkeypatch, stack, *argv) == 0
    out = capsysbinary.readouterr().out
    assert [msgspec.json.decode(line) for line in out.splitlines()] == lines[5:7]


@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("value", ["notadate", "2h ago", "5 minutes", "2026-13-45T00:00:00Z"])
async def test_cli_replay_refuses_a_bad_time(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    code = await run_cli(monkeypatch, recorded.stack, "replay", recorded.station, option, value)
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "evbus replay:" in captured.err
    assert repr(value) in captured.err
    assert "Traceback" not in captured.err


# --- DELETE /api/connections/{id} ------------------------------------------------------------


async def test_forgetting_hides_closed_connections_and_keeps_the_open_one(recorded: Recorded) -> None:
    stack = recorded.stack
    station = f"CP-{uuid.uuid4().hex[:10]}"
    await short_session(stack, station)
    await wait_until_closed(stack, station)
    async with stack.http() as api:

        async def mine(**params: str) -> list[dict[str, Any]]:
            response = await api.get("/api/connections", params={"status": "all", "limit": 1000, **params})
            assert response.status_code == 200, response.text
            return [c for c in response.json() if c["identity"] == station]

        async with connected(stack, station, "ocpp1.6", ChargePoint16) as cp:
            await cp.call(call16.Heartbeat())
            await stack.projected()
            assert sorted(c["status"] for c in await mine()) == ["offline", "online"]

            response = await api.delete(f"/api/connections/{station}")
            assert response.status_code == 200, response.text
            assert response.json()["success"] is True
            (left,) = await mine()
            assert left["status"] == "online"
            assert await mine(status="offline") == []
            detail = (await api.get(f"/api/connections/{station}")).json()
            assert detail["status"] == "online"
            assert detail["history"] == []
        # the record itself stays: the frames are still there to replay and to list
        assert len(frame_lines(await replay_lines(stack, identity=station))) == 12
        other = (await api.get("/api/connections", params={"status": "all", "limit": 1000})).json()
        assert recorded.station in {c["identity"] for c in other}
