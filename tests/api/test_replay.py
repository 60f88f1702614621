"""The record as it was: `GET /api/replay` and `evbus replay` serve a station's stored messages byte
for byte, in stream order, with their headers; and `DELETE /api/connections/{id}` forgets only the
closed connections."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16

from evbus import cli
from evbus import replay as replaying
from evbus.clock import rfc3339
from schemas import streams, subjects
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


# --- odd messages: what nats-py would have made of them, byte for byte -----------------------


async def publish_raw(stack: Stack, subject: str, block: bytes, payload: bytes) -> None:
    """An HPUB straight on the wire, so the header block is exactly ``block`` (nats-py writes only
    the plain ``Name: value`` form)."""
    url = stack.nc.connected_url
    assert url is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    await reader.readline()  # INFO
    body = block + payload
    writer.write(b'CONNECT {"verbose":false,"headers":true}\r\n')
    writer.write(f"HPUB {subject} {len(block)} {len(body)}\r\n".encode() + body + b"\r\nPING\r\n")
    await writer.drain()
    while not (await reader.readline()).startswith(b"PONG"):
        pass
    writer.close()


def old_line(msg: Any) -> bytes:
    """A record as replay built it from nats-py's message (the implementation before raw reads)."""
    seq, stream_ns, _ = streams.delivery(msg.reply)
    time = rfc3339(datetime.fromtimestamp(stream_ns / 1e9, UTC))
    try:
        frame = replaying.Frame(
            seq=seq, time=time, subject=msg.subject, headers=msg.headers or {}, data=msg.data.decode()
        )
    except UnicodeDecodeError:
        b64 = base64.b64encode(msg.data).decode()
        frame = replaying.Frame(seq=seq, time=time, subject=msg.subject, headers=msg.headers or {}, data_base64=b64)
    return replaying.encode_line(frame) + b"\n"


async def test_odd_messages_replay_as_nats_py_read_them(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    stack = recorded.stack
    station = f"CP-{uuid.uuid4().hex[:10]}"
    heartbeat = subjects.ocpp_frame(station, "in", "Heartbeat")
    await stack.js.publish(heartbeat, b'[2,"1","Heartbeat",{}]', headers={subjects.H_STATION: station})
    await stack.js.publish(heartbeat, b'[2,"2","Heartbeat",{}]')  # no headers at all
    await stack.js.publish(heartbeat, b"\xff\xfe not UTF-8", headers={"Quote": 'say "hi" \\ \u00fc'})
    await publish_raw(stack, heartbeat, b"NATS/1.0\r\n Spaced :  v  \r\nA: 1\r\nA: 2\r\nBad Key: x\r\n\r\n", b"[]")
    await publish_raw(stack, heartbeat, b"NATS/1.0\r\nLone: a\nb\r\nBroken: \xff\r\n\r\n", b'"\x01\x1f"')
    await publish_raw(stack, heartbeat, b"NATS/1.0\r\n\r\n", b"")

    expected = b"".join(old_line(m) for m in await stored_frames(stack.js, station))
    assert expected.count(b"\n") == 6
    assert b"".join([chunk async for chunk in replaying.ndjson(stack.nc, station)]) == expected
    assert b"".join([replaying.encode_line(f) + b"\n" async for f in replaying.frames(stack.nc, station)]) == expected

    await stack.projected()
    async with stack.http() as api:
        assert (await api.get("/api/replay", params={"identity": station})).content == expected
    assert await run_cli(monkeypatch, stack, "replay", station, "--format", "ndjson") == 0
    assert capsysbinary.readouterr().out == expected


async def test_a_client_that_goes_away_leaves_no_consumer_behind(recorded: Recorded) -> None:
    stack = recorded.stack
    station = f"CP-{uuid.uuid4().hex[:10]}"
    subject = subjects.ocpp_frame(station, "in", "Heartbeat")
    body = b'[2,"1","Heartbeat",{}]' + b" " * 2000
    acks = [await stack.js.publish_async(subject, body, headers={subjects.H_STATION: station}) for _ in range(3000)]
    await asyncio.gather(*acks)
    await stack.projected()

    async def replay_consumers() -> list[str]:
        infos = await stack.js.consumers_info(subjects.STREAM_OCPP)
        return [c.name for c in infos if c.config.filter_subject == subjects.ocpp_station(station)]

    async with stack.http() as api, api.stream("GET", "/api/replay", params={"identity": station}) as response:
        async for _ in response.aiter_raw():
            assert await replay_consumers() != []
            break  # and hang up with most of the 6 MB still to come

    async def gone() -> bool:
        return await replay_consumers() == []

    await eventually(gone, timeout=10)


def test_stream_times_are_formatted_as_before() -> None:
    rng = random.Random(7)
    now_ns = 1_795_257_717_882_823_694
    values = [now_ns + rng.randint(0, 10**15) for _ in range(20_000)]
    values += [
        s * 10**9 + f
        for s in range(now_ns // 10**9, now_ns // 10**9 + 20)
        for f in (0, 499, 500, 501, 999_999_499, 999_999_500, 999_999_999)
    ]
    for ns in values:
        assert replaying.stream_time(ns) == rfc3339(datetime.fromtimestamp(ns / 1e9, UTC)), ns


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
