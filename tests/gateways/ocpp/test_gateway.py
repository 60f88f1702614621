"""The OCPP gateway against a real nats-server: handshakes, ids, auth, malformed frames, our CALLs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import socket
from collections.abc import AsyncIterator

import msgspec
import pytest
import websockets
from nats.js.errors import KeyNotFoundError
from websockets.exceptions import ConnectionClosed, InvalidStatus

from evbus.cli import GC_THRESHOLDS, collect_less_often
from evbus.passwords import hash_password
from evbus.settings import Settings
from schemas import subjects
from schemas.records import Presence, StationRecord, encode
from tests.conftest import Stack, running
from tests.support import RawStation, eventually, publish_call, stored, stored_frames

pytestmark = pytest.mark.nats


@contextlib.asynccontextmanager
async def connect(
    stack: Stack, station_path: str, protocol: str = "ocpp1.6", **kwargs: object
) -> AsyncIterator[RawStation]:
    async with websockets.connect(
        stack.url(station_path),
        subprotocols=[protocol],
        compression=None,
        **kwargs,  # type: ignore[list-item]
    ) as ws:
        yield RawStation(ws)


async def security_events(stack: Stack, category: str, station: str | None = None) -> list[dict]:
    messages = await stored(stack.js, subjects.security_event(category), subjects.STREAM_EVENTS)
    events = [msgspec.json.decode(m.data) for m in messages]
    return [e for e in events if station is None or e.get("station") == station]


# --- station ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "path_suffix"), [(".01*>", "%2E01*%3E"), ("%", "%25"), (":a+b|c@d=e", ":a+b|c@d=e")]
)
async def test_special_ids_are_escaped_in_subjects_and_kept_in_headers(
    stack: Stack, station: str, suffix: str, path_suffix: str
) -> None:
    special = station + suffix
    async with connect(stack, station + path_suffix) as cp:
        answer = await cp.call("Heartbeat", {})
        assert answer[0] == 3
    frames = await eventually(lambda: stored_frames(stack.js, special))
    heartbeat = [m for m in frames if m.subject.endswith(".in.Heartbeat")]
    assert heartbeat[0].subject == f"ocpp.{subjects.token(special)}.in.Heartbeat"
    assert heartbeat[0].headers[subjects.H_STATION] == special
    assert "." not in subjects.token(special)


async def test_the_bare_id_path_works_too(stack: Stack, station: str) -> None:
    async with websockets.connect(stack.url(station, prefix="/"), subprotocols=["ocpp2.0.1"]) as ws:
        cp = RawStation(ws)
        assert (await cp.call("Heartbeat", {}))[0] == 3


@pytest.mark.parametrize(("path", "status"), [("with%20space", 400), ("A" * 49, 400), ("", 404), ("a/b", 404)])
async def test_bad_ids_are_refused_and_recorded(stack: Stack, path: str, status: int) -> None:
    before = len(await security_events(stack, "bad_station_id"))
    with pytest.raises(InvalidStatus) as refused:
        async with connect(stack, path):
            pass
    assert refused.value.response.status_code == status

    async def recorded() -> bool:
        return len(await security_events(stack, "bad_station_id")) > before

    await eventually(recorded)


# --- subprotocols ------------------------------------------------------------------------------


@pytest.mark.parametrize("offered", [["ocpp1.5"], ["mqtt", "ocpp3.0"], None])
async def test_a_handshake_without_a_supported_subprotocol_is_refused(
    stack: Stack, station: str, offered: list[str] | None
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(stack.url(station), subprotocols=offered):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 400
    assert b"ocpp2.1, ocpp2.0.1, ocpp1.6" in refused.value.response.body
    rejected = await eventually(lambda: stored(stack.js, subjects.ocpp_conn(station, "rejected")))
    assert "unsupported_protocol" in msgspec.json.decode(rejected[0].data)["reason"]


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"), (["ocpp2.0.1", "ocpp2.1"], "ocpp2.1"), (["ocpp1.6"], "ocpp1.6")],
)
async def test_the_newest_common_protocol_is_chosen(
    stack: Stack, station: str, offered: list[str], chosen: str
) -> None:
    async with websockets.connect(stack.url(station), subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == chosen


# --- presence ----------------------------------------------------------------------------------


async def test_presence_is_rewritten_for_every_connected_station(stack: Stack, station: str) -> None:
    assert stack.gateway is not None
    kv = await stack.js.key_value(subjects.BUCKET_STATIONS)
    others = [f"{station}-{i}" for i in range(3)]
    async with contextlib.AsyncExitStack() as sockets:
        for name in [station, *others]:
            await (await sockets.enter_async_context(connect(stack, name))).call("Heartbeat", {})
        for name in [station, *others]:
            await kv.delete(subjects.kv_key(name))  # as if their TTL had run out

        assert await stack.gateway.refresh_presence() == 0

        for name in [station, *others]:
            entry = await kv.get(subjects.kv_key(name))
            value = msgspec.json.decode(entry.value or b"", type=Presence)
            assert value.connection == stack.gateway.connections[name].connection_id
            assert value.gateway == stack.gateway.id


async def test_presence_is_deleted_when_the_station_disconnects(stack: Stack, station: str) -> None:
    assert stack.gateway is not None
    kv = await stack.js.key_value(subjects.BUCKET_STATIONS)
    async with connect(stack, station) as cp:
        await cp.call("Heartbeat", {})
        assert await stack.gateway.refresh_presence() == 0  # a newer revision than the first write
        assert (await kv.get(subjects.kv_key(station))).value

    async def gone() -> bool:
        try:
            entry = await kv.get(subjects.kv_key(station))
        except KeyNotFoundError:
            return True
        return not entry.value

    await eventually(gone)


async def test_a_disconnect_leaves_presence_someone_else_wrote_since(stack: Stack, station: str) -> None:
    kv = await stack.js.key_value(subjects.BUCKET_STATIONS)
    theirs = encode(
        Presence(gateway="other-gateway", connection="other", protocol="ocpp1.6", connected_at="2026-11-21T10:00:00Z")
    )
    async with connect(stack, station) as cp:
        await cp.call("Heartbeat", {})
        await kv.put(subjects.kv_key(station), theirs)  # the station reached another gateway meanwhile

    async def disconnected() -> bool:
        return any(m.subject.endswith(".conn.disconnected") for m in await stored_frames(stack.js, station))

    await eventually(disconnected)  # the gateway sent its compare-and-delete before this event
    entry = await kv.get(subjects.kv_key(station))
    assert entry.value == theirs


# --- many connections at once ------------------------------------------------------------------


def _open_sockets(port: int, count: int, timeout: float) -> list[socket.socket]:
    """Open up to ``count`` TCP connections, stopping at the first the kernel does not complete."""
    opened: list[socket.socket] = []
    for _ in range(count):
        try:
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        except OSError:
            break
    return opened


async def test_a_burst_of_connections_waits_in_the_kernel_until_accepted(stack: Stack) -> None:
    """While the gateway's loop is busy (here: blocked outright), new connections queue in the listen
    backlog. asyncio's default backlog of 100 would make the kernel drop the 101st and later ones."""
    assert stack.gateway is not None
    opened = _open_sockets(stack.gateway.port, 300, timeout=0.5)  # blocks this loop: nothing is accepted
    try:
        assert len(opened) == 300
    finally:
        for sock in opened:
            sock.close()


async def test_a_connection_keeps_no_handshake_headers_and_gets_a_fresh_id(stack: Stack, station: str) -> None:
    assert stack.gateway is not None
    async with connect(stack, station) as first, connect(stack, station + "-2") as second:
        await first.call("Heartbeat", {})
        await second.call("Heartbeat", {})
        one, two = stack.gateway.connections[station], stack.gateway.connections[station + "-2"]
        assert one.socket.request is not None
        assert len(one.socket.request.headers) == 0  # ~3 KB per station less, nothing reads them later
        assert one.socket.response is None
        assert one.connection_id != two.connection_id
        assert one.connection_id.split("-")[0] == two.connection_id.split("-")[0]  # the gateway's random part


def test_the_gateway_raises_gc_thresholds_and_never_lowers_them() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collect_less_often()
        assert gc.get_threshold() == GC_THRESHOLDS
        gc.set_threshold(100_000, 50, 5)
        collect_less_often()
        assert gc.get_threshold() == (100_000, 50, GC_THRESHOLDS[2])
    finally:
        gc.set_threshold(*saved)


# --- websocket pings ---------------------------------------------------------------------------


async def test_a_station_that_stops_answering_pings_is_disconnected(settings: Settings, station: str) -> None:
    async with running(settings.with_(ws_ping_interval=0.2)) as stack:
        assert stack.gateway is not None
        # a raw socket: the handshake by hand, then never a pong (a websockets client would answer)
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ocpp/{station} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
        )
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
        received = await asyncio.wait_for(reader.read(), 5)  # until the gateway closes the socket
        writer.close()
        opcodes = []
        while len(received) >= 2:
            length = received[1] & 0x7F
            opcodes.append(received[0] & 0x0F)
            received = received[2 + length :]
        assert opcodes[0] == 0x9  # ping
        assert 0x8 in opcodes  # then close

        async def disconnected() -> list[dict[str, object]]:
            return [
                msgspec.json.decode(m.data)
                for m in await stored_frames(stack.js, station)
                if m.subject.endswith(".conn.disconnected")
            ]

        [event] = await eventually(disconnected)
        assert event["closeCode"] == 1006  # the gateway closed it (1011 keepalive ping timeout); no close came back


# --- duplicate connections ---------------------------------------------------------------------


async def test_a_second_socket_with_the_same_id_replaces_the_first(stack: Stack, station: str) -> None:
    async with connect(stack, station) as first:
        assert (await first.call("Heartbeat", {}))[0] == 3
        async with connect(stack, station) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await first.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.reason == "replaced by a new connection"
            assert (await second.call("Heartbeat", {}))[0] == 3  # the new socket is served
            kv = await stack.js.key_value(subjects.BUCKET_STATIONS)

            async def presence_is_second() -> bool:
                entry = await kv.get(subjects.kv_key(station))
                value = msgspec.json.decode(entry.value, type=Presence)
                return value.connection == stack.gateway.connections[station].connection_id  # type: ignore[union-attr]

            await eventually(presence_is_second)

    async def lifecycle() -> list[str]:
        events = [m.subject.rsplit(".", 1)[1] for m in await stored_frames(stack.js, station) if ".conn." in m.subject]
        return events if len(events) >= 5 else []

    events = await eventually(lifecycle)
    assert events[:2] == ["connected", "replaced"]  # the old socket is closed before the new one is served
    assert sorted(events[2:]) == ["connected", "disconnected", "disconnected"]


# --- Basic auth (security profile 1) -----------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth_when_the_station_has_a_password(stack: Stack, station: str) -> None:
    registry = await stack.js.key_value(subjects.BUCKET_REGISTRY)
    await registry.put(subjects.kv_key(station), encode(StationRecord(password_hash=hash_password("right-password"))))
    await eventually(lambda: _async(stack.gateway.registry.get(station)))  # type: ignore[union-attr]

    for headers in ({}, basic(station, "wrong-password"), basic("someone-else", "right-password")):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(stack, station, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert "Basic" in refused.value.response.headers["WWW-Authenticate"]
    failures = await eventually(lambda: _at_least(security_events(stack, "auth_failed", station), 3))
    assert all(f["remoteAddress"].startswith("127.0.0.1") for f in failures)
    assert all("right-password" not in str(f) and "wrong-password" not in str(f) for f in failures)

    async with connect(stack, station, additional_headers=basic(station, "right-password")) as cp:
        assert (await cp.call("Heartbeat", {}))[0] == 3
    stored_registry = await registry.get(subjects.kv_key(station))
    assert b"right-password" not in stored_registry.value  # only the hash is kept


async def test_unknown_stations_are_refused_when_so_configured(settings: Settings, station: str) -> None:
    async with running(settings.with_(unknown_stations="reject")) as stack:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(stack, station):
                pass
        assert refused.value.response.status_code == 404
        await eventually(lambda: security_events(stack, "unknown_station", station))


async def _async(value: object) -> object:
    return value


async def _at_least(events_coro, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    events = await events_coro
    return events if len(events) >= n else []


# --- malformed frames --------------------------------------------------------------------------

MALFORMED = [
    # (protocol, frame, expected answer id, expected code)
    ("ocpp1.6", "this is not json", "-1", "FormationViolation"),
    ("ocpp2.0.1", "this is not json", "-1", "RpcFrameworkError"),
    ("ocpp1.6", '{"not": "an array"}', "-1", "FormationViolation"),
    ("ocpp2.0.1", '[2, "m1", "Heartbeat"]', "m1", "RpcFrameworkError"),
    ("ocpp1.6", '[2, "m2", "Heartbeat", "payload"]', "m2", "FormationViolation"),
    ("ocpp2.0.1", '[9, "m3", "Heartbeat", {}]', "m3", "MessageTypeNotSupported"),
    ("ocpp1.6", '[9, "m3", "Heartbeat", {}]', "m3", "FormationViolation"),
    ("ocpp2.0.1", '[2, "m4", "No.Such>Action", {}]', "m4", "NotImplemented"),
]


@pytest.mark.parametrize(("protocol", "frame", "unique_id", "code"), MALFORMED)
async def test_malformed_frames_are_answered_recorded_and_survived(
    stack: Stack, station: str, protocol: str, frame: str, unique_id: str, code: str
) -> None:
    async with connect(stack, station, protocol) as cp:
        await cp.ws.send(frame)
        answer = await cp.recv()
        assert answer[:3] == [4, unique_id, code]
        assert (await cp.call("Heartbeat", {}))[0] == 3  # the connection is still up
    invalid = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "in")))
    assert invalid[0].data == frame.encode()  # kept verbatim
    assert invalid[0].headers[subjects.H_ERROR]
    answers = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "out")))
    assert msgspec.json.decode(answers[0].data)[2] == code
    await eventually(lambda: security_events(stack, "bad_frame", station))


async def test_payload_schema_violations_are_answered_by_the_processor(stack: Stack, station: str) -> None:
    async with connect(stack, station, "ocpp1.6") as cp:
        answer = await cp.call(
            "StartTransaction", {"connectorId": "one", "idTag": "T", "meterStart": 0, "timestamp": "x"}
        )
        assert answer[2] == "TypeConstraintViolation"
        answer = await cp.call("BootNotification", {"chargePointVendor": "v"})
        assert answer[2] == "OccurenceConstraintViolation"
        assert (await cp.call("Heartbeat", {}))[0] == 3


async def test_binary_frames_get_a_callerror_and_are_kept(stack: Stack, station: str) -> None:
    async with connect(stack, station, "ocpp2.0.1") as cp:
        await cp.ws.send(b"\x00\x01binary")
        assert (await cp.recv())[:3] == [4, "-1", "RpcFrameworkError"]
        assert (await cp.call("Heartbeat", {}))[0] == 3
    invalid = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "in")))
    assert invalid[0].data == b"\x00\x01binary"


async def test_frames_over_the_size_limit(settings: Settings, station: str) -> None:
    async with running(settings.with_(max_frame_bytes=1024)) as stack:
        big = msgspec.json.encode([2, "big-1", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}]).decode()
        async with connect(stack, station, "ocpp1.6") as cp:
            await cp.ws.send(big)
            assert (await cp.recv())[:3] == [4, "big-1", "FormationViolation"]
            assert (await cp.call("Heartbeat", {}))[0] == 3
        invalid = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "in")))
        assert invalid[0].data == big.encode()


async def test_a_result_for_no_call_of_ours_is_recorded_as_invalid(stack: Stack, station: str) -> None:
    async with connect(stack, station, "ocpp1.6") as cp:
        await cp.ws.send('[3, "nobody-asked", {}]')
        assert (await cp.call("Heartbeat", {}))[0] == 3  # nothing answers an answer
    invalid = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "in")))
    assert "answers no CALL" in invalid[0].headers[subjects.H_ERROR]


# --- CALLs we send -----------------------------------------------------------------------------


async def send_call(stack: Stack, station: str, unique_id: str, action: str, payload: dict) -> None:
    await publish_call(stack.js, station, [2, unique_id, action, payload])


async def test_our_calls_go_one_at_a_time_and_results_carry_their_action(stack: Stack, station: str) -> None:
    async with connect(stack, station, "ocpp1.6") as cp:
        assert (await cp.call("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}))[0] == 3
        await send_call(stack, station, "q1", "GetConfiguration", {})
        await send_call(stack, station, "q2", "Reset", {"type": "Soft"})
        first = await cp.recv()
        assert first[:3] == [2, "q1", "GetConfiguration"]
        with pytest.raises(TimeoutError):
            await cp.recv(timeout=0.3)  # the second waits until the first is answered
        await cp.ws.send('[3, "q1", {"configurationKey": []}]')
        second = await cp.recv()
        assert second[:3] == [2, "q2", "Reset"]
        await cp.ws.send('[4, "q2", "NotSupported", "no reset today", {}]')
    result = await eventually(lambda: stored(stack.js, subjects.ocpp_frame(station, "in", "GetConfiguration")))
    assert result[0].headers[subjects.H_TYPE] == "CALLRESULT"
    assert result[0].headers[subjects.H_ID] == "q1"
    error = await eventually(lambda: stored(stack.js, subjects.ocpp_frame(station, "in", "Reset")))
    assert error[0].headers[subjects.H_TYPE] == "CALLERROR"
