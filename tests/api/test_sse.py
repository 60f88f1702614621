"""SSE routes over a real API and nats-server: order, exact resume (also across an API restart and
past the hub's ring), heartbeats, overflow of a stalled client, filters, per-token limits.

Frames are published straight onto the OCPP stream (as a gateway stores them) where a test needs
many or large ones; one test connects a real ``ocpp`` library station through the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ocpp.v16 import call as call16

from api.live import Hub, Live
from evbus.settings import Settings
from schemas import subjects
from schemas.telemetry import Reading, encode
from tests.conftest import API_TOKEN, Stack, running, stack_settings
from tests.projections.synthetic import Message, Script, publish
from tests.sse import Event, Reader, open_stream
from tests.stations import Station16
from tests.support import charge_point, eventually

HEARTBEAT_S = 0.3
BUFFER = 2000
PER_TOKEN = 6


def settings_for(nats_url: str, data_dir: Path) -> Settings:
    return stack_settings(nats_url, data_dir).with_(
        sse_heartbeat=HEARTBEAT_S, sse_client_buffer=BUFFER, sse_clients_per_token=PER_TOKEN
    )


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    # No CSMS processor: the tests publish stations' CALLs and our answers themselves.
    settings = settings_for(nats_url, tmp_path_factory.mktemp("sse"))
    async with running(settings, processor=False, api=True) as stack:
        try:
            yield stack
        finally:
            # Tens of thousands of stations' CALLs stored here have no answers: left in the
            # session's stream, the next module's CSMS processor (the durable consumer every stack
            # shares) would answer them all while that module's tests run.
            for station in STATIONS:
                await stack.js.purge_stream(subjects.STREAM_OCPP, subject=f"ocpp.{subjects.token(station)}.>")


def live_of(stack: Stack) -> Live:
    assert stack.api is not None
    assert stack.api.services.live is not None
    return stack.api.services.live


def heartbeats(station: str, count: int, script: Script | None = None, size: int = 0) -> list[Message]:
    """``count`` Heartbeat CALLs and answers of ``station`` (2 x count frames); ``size`` pads each
    CALL's payload with that many bytes."""
    s = script or Script()
    out: list[Message] = []
    for i in range(count):
        req = {"pad": "x" * size} if size else {}
        out += s.call(station, f"{station}-c", "ocpp1.6", "Heartbeat", req, {"currentTime": s.at(i)}, i)
    return out


STATIONS: set[str] = set()  # every station this module made up


def new_station() -> str:
    station = f"SSE-{uuid.uuid4().hex[:8]}"
    STATIONS.add(station)
    return station


def frames(events: list[Event]) -> list[dict]:
    return [e.json() for e in events if e.event == "message"]


async def test_frames_arrive_in_order_with_the_fields_of_api_messages(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_station()
    written = live_of(site).ocpp.written
    async with open_stream(api, "/api/messages/stream", identity=station) as stream:
        connected = await stream.next()
        assert connected.event == "connected"
        assert connected.id is not None
        await publish(site.js, heartbeats(station, 20))
        got = await stream.events(40, name="message")
    ids = [int(e.id) for e in got if e.id]
    assert ids == sorted(ids)
    assert len(set(ids)) == 40
    assert [m["id"] for m in frames(got)] == ids  # the id is the stream sequence
    assert live_of(site).ocpp.written > written, "a caught-up client gets its events straight on its socket"
    await site.projected()
    listed = (await api.get("/api/messages", params={"identity": station, "order": "asc", "limit": 100})).json()
    for m in listed:
        m["responseTime"] = None  # the list knows the answer's delay; the live frame came before it
    assert frames(got) == listed


async def test_reconnect_with_last_event_id_gets_exactly_what_was_missed(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_station()
    script = Script()
    async with open_stream(api, "/api/messages/stream", identity=station) as stream:
        await stream.next()
        await publish(site.js, heartbeats(station, 5, script))
        first = await stream.events(10, name="message")
    last = first[-1].id
    assert last is not None
    await publish(site.js, heartbeats(station, 7, script))  # while no client is connected
    async with open_stream(api, "/api/messages/stream", last_event_id=last, identity=station) as stream:
        connected = await stream.next()
        assert connected.event == "connected"
        assert connected.json()["lastEventId"] == last
        missed = await stream.events(14, name="message")
        await publish(site.js, heartbeats(station, 1, script))
        after = await stream.events(2, name="message")
    seqs = [int(e.id) for e in [*first, *missed, *after] if e.id]
    assert len(seqs) == len(set(seqs)) == 26, "none lost, none repeated"
    assert seqs == sorted(seqs)
    await site.projected()
    stored = (await api.get("/api/messages", params={"identity": station, "order": "asc"})).json()
    assert [m["id"] for m in stored] == seqs


async def test_query_parameter_resumes_like_the_header(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_station()
    await publish(site.js, heartbeats(station, 3))
    await site.projected()
    stored = (await api.get("/api/messages", params={"identity": station, "order": "asc"})).json()
    after = str(stored[1]["id"])
    async with open_stream(api, "/api/messages/stream", identity=station, lastEventId=after) as stream:
        await stream.next()
        got = await stream.events(4, name="message")
    assert [m["id"] for m in frames(got)] == [m["id"] for m in stored[2:]]


async def test_resume_older_than_the_ring_reads_the_stream(site: Stack, api: httpx.AsyncClient) -> None:
    hub = live_of(site).ocpp
    station = new_station()
    ring, hub.ring = hub.ring, deque(hub.ring, maxlen=5)  # the ring keeps 5: the rest comes from the stream
    try:
        async with open_stream(api, "/api/messages/stream", identity=station) as stream:
            start = (await stream.next()).id
        await publish(site.js, heartbeats(station, 30))
        await eventually(lambda: _at_least(hub.position, 60 + int(start or 0)))
        async with open_stream(api, "/api/messages/stream", last_event_id=start, identity=station) as stream:
            await stream.next()
            got = await stream.events(60, name="message")
    finally:
        hub.ring = deque(ring, maxlen=ring.maxlen)
    seqs = [int(e.id) for e in got if e.id]
    assert len(set(seqs)) == 60
    assert seqs == sorted(seqs)
    assert {m["identity"] for m in frames(got)} == {station}


async def _at_least(value: int, target: int) -> bool:
    return value >= target


async def test_resume_across_an_api_restart(nats_url: str, tmp_path: Path) -> None:
    station = new_station()
    settings = settings_for(nats_url, tmp_path)
    script = Script()
    async with (
        running(settings, gateway=False, processor=False, api=True) as stack,
        stack.http() as api,
        open_stream(api, "/api/messages/stream", identity=station) as stream,
    ):
        await stream.next()
        await publish(stack.js, heartbeats(station, 4, script))
        before = await stream.events(8, name="message")
    last = before[-1].id
    assert last is not None
    async with running(settings, gateway=False, processor=False) as bus_only:
        await publish(bus_only.js, heartbeats(station, 6, script))  # while no API runs
    async with (
        running(settings, gateway=False, processor=False, api=True) as stack,
        stack.http() as api,
        open_stream(api, "/api/messages/stream", last_event_id=last, identity=station) as stream,
    ):
        await stream.next()
        await publish(stack.js, heartbeats(station, 1, script))
        missed = await stream.events(14, name="message")
    seqs = [int(e.id) for e in [*before, *missed] if e.id]
    assert len(seqs) == len(set(seqs)) == 22, "8 before, 12 while the API was down, 2 after: none lost or repeated"
    assert seqs == sorted(seqs)


async def test_heartbeat_comments_arrive_on_an_idle_stream(api: httpx.AsyncClient) -> None:
    async with open_stream(api, "/api/security/stream", category=f"nothing-{uuid.uuid4().hex[:6]}") as stream:
        assert (await stream.next()).event == "connected"
        comments = [await stream.next(timeout=5 * HEARTBEAT_S) for _ in range(2)]
    assert [c.event for c in comments] == [":", ":"]


async def test_filters_select_station_direction_type_and_method(site: Stack, api: httpx.AsyncClient) -> None:
    station, other = new_station(), new_station()
    script = Script()
    messages = heartbeats(other, 2, script) + heartbeats(station, 2, script)
    messages += script.call(station, f"{station}-c", "ocpp1.6", "Authorize", {"idTag": "T1"}, {"idTagInfo": {}}, 9)
    async with contextlib.AsyncExitStack() as streams:
        outs = await streams.enter_async_context(
            open_stream(api, "/api/messages/stream", identity=station, direction="OUT")
        )
        calls = await streams.enter_async_context(
            open_stream(api, "/api/messages/stream", identity=station, type="CALL", method="Authorize")
        )
        for s in (outs, calls):
            await s.next()
        await publish(site.js, messages)
        got_outs = frames(await outs.events(3, name="message"))
        got_calls = frames(await calls.events(1, name="message"))
    assert {(m["identity"], m["direction"]) for m in got_outs} == {(station, "OUT")}
    assert [(m["method"], m["type"], m["payload"]) for m in got_calls] == [("Authorize", "CALL", {"idTag": "T1"})]


async def test_bad_filters_and_last_event_ids_are_400(api: httpx.AsyncClient) -> None:
    for params, headers in [
        ({"direction": "SIDEWAYS"}, {}),
        ({}, {"Last-Event-ID": "twelve"}),
        ({}, {"Last-Event-ID": "1-2"}),  # the messages feed has one stream
        ({"lastEventId": "99999999999999999999"}, {}),
    ]:
        answer = await api.get("/api/messages/stream", params=params, headers=headers)
        assert answer.status_code == 400, (params, headers, answer.text)
        assert "error" in answer.json()


async def test_a_stalled_client_gets_overflow_and_the_others_are_unaffected(
    site: Stack, api: httpx.AsyncClient
) -> None:
    station = new_station()
    live = live_of(site)
    overflows = live.overflows
    port = httpx.URL(site.api_url).port
    # The stalled client: a socket with a small receive window that sends its request and reads nothing.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
    stalled.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stalled, ("127.0.0.1", port))
    request = (
        f"GET /api/messages/stream?identity={station} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    )
    await loop.sock_sendall(stalled, request.encode())
    script = Script()
    sent = 0
    try:
        await eventually(lambda: _clients(live.ocpp, 1))
        async with open_stream(api, "/api/messages/stream", identity=station) as healthy:
            await healthy.next()
            got: list[Event] = []
            reading = asyncio.create_task(_collect(healthy, got))
            # Bursts of 2000 frames until the stalled client's socket buffers and then its BUFFER
            # events are full (about 4 MB here), while the healthy client reads along.
            for _ in range(20):
                burst = heartbeats(station, 1000, script)
                await publish(site.js, burst)
                sent += len(burst)
                if await _overflowed(live.ocpp):
                    break
            await eventually(lambda: _overflowed(live.ocpp))  # flagged; it gets the event once it reads
            await eventually(lambda: _count(got, sent), timeout=30)
            reading.cancel()
        assert len({e.id for e in got}) == sent, "the healthy client got every frame"
        # Now the stalled client reads: what the buffers held, then overflow, then the end.
        stalled.setblocking(True)
        stalled.settimeout(10)
        raw = b""
        with contextlib.suppress(TimeoutError):
            while b"event: overflow" not in raw or not raw.endswith(b"\n\n"):
                chunk = await asyncio.to_thread(stalled.recv, 1 << 20)
                if not chunk:
                    break
                raw += chunk
    finally:
        stalled.close()
    text = dechunk(raw).decode(errors="replace")
    assert "event: overflow" in text
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids[1:-1] == [int(e.id or 0) for e in got][: len(ids) - 2], "in order, none skipped, until it fell behind"
    overflow = json.loads(text.split("event: overflow\ndata: ", 1)[1].split("\n", 1)[0])
    assert overflow["lastEventId"] == str(ids[-1]) == str(ids[-2]), "the overflow's id resumes after the last event"
    missed = [int(e.id or 0) for e in got if int(e.id or 0) > ids[-1]]
    assert missed, "it fell behind: events after its overflow were not sent"
    async with open_stream(api, "/api/messages/stream", last_event_id=str(ids[-1]), identity=station) as resumed:
        await resumed.next()
        rest = await resumed.events(len(missed), timeout=30, name="message")
    assert [int(e.id or 0) for e in rest] == missed
    assert live.overflows == overflows + 1


async def test_a_client_that_pauses_reading_gets_every_event_once_in_order(site: Stack) -> None:
    """A caught-up client gets events written straight to its socket; when it stops reading and
    its socket fills, it goes back to its buffer, and once it reads again it gets the rest of the
    buffer and then live events straight again: every event once, in order."""
    station = new_station()
    hub = live_of(site).ocpp
    slowed = hub.slowed
    port = httpx.URL(site.api_url).port
    paused = socket.socket()
    paused.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
    paused.setblocking(False)
    loop = asyncio.get_running_loop()
    raw = b""

    async def read_until(ids: int) -> None:
        nonlocal raw
        async with asyncio.timeout(30):
            while raw.count(b"\nid: ") < ids:
                chunk = await loop.sock_recv(paused, 1 << 20)
                assert chunk, "the stream ended"
                raw += chunk

    try:
        await loop.sock_connect(paused, ("127.0.0.1", port))
        request = (
            f"GET /api/messages/stream?identity={station} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {API_TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
        )
        await loop.sock_sendall(paused, request.encode())
        await read_until(1)  # connected
        await eventually(lambda: _direct(hub, 1))
        script = Script()
        # 7 MB of events (more than the kernel buffers), 1 800 events (fewer than BUFFER)
        first = heartbeats(station, 900, script, size=8000)
        await publish(site.js, first)
        await eventually(lambda: _slowed(hub, slowed))  # its socket filled up while it did not read
        await read_until(1 + len(first))
        await eventually(lambda: _direct(hub, 1))  # caught up: straight to the socket again
        second = heartbeats(station, 50, script)
        await publish(site.js, second)
        await read_until(1 + len(first) + len(second))
    finally:
        paused.close()
    ids = [int(line[4:]) for line in dechunk(raw).decode(errors="replace").splitlines() if line.startswith("id: ")]
    events = ids[1:]  # after connected's
    assert len(events) == len(first) + len(second)
    assert events == sorted(set(events)), "in order, none twice"
    assert events[-1] - events[0] == len(events) - 1, "none skipped"
    assert b"event: overflow" not in raw


def dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 answer in chunked encoding as read off the socket so far (the last
    chunk may be incomplete); fails on any framing error, so the hubs' own chunks are checked too."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body, view = [], memoryview(rest)
    while view:
        line_end = bytes(view[:20]).find(b"\r\n")
        if line_end < 0:
            break  # the size line is still on its way
        size = int(bytes(view[:line_end]), 16)  # ValueError on anything but a hex size
        start = line_end + 2
        if len(view) < start + size + 2:
            body.append(bytes(view[start : start + size]))  # the last, incomplete chunk
            break
        assert bytes(view[start + size : start + size + 2]) == b"\r\n", "a chunk ends with CRLF"
        body.append(bytes(view[start : start + size]))
        view = view[start + size + 2 :]
    return b"".join(body)


async def _direct(hub: Hub, count: int) -> bool:
    return sum(c.direct for c in hub.clients) >= count


async def _slowed(hub: Hub, before: int) -> bool:
    return hub.slowed > before


async def _clients(hub: Hub, count: int) -> bool:
    return len(hub.clients) >= count


async def _collect(stream: Reader, into: list[Event]) -> None:
    while True:
        event = await stream.next(timeout=60)
        if event.event == "message":
            into.append(event)


async def _count(events: list[Event], count: int) -> bool:
    return len(events) >= count


async def _overflowed(hub: Hub) -> bool:
    return any(c.overflowed for c in hub.clients)


async def test_streams_per_token_are_limited(site: Stack, api: httpx.AsyncClient) -> None:
    async with contextlib.AsyncExitStack() as streams:
        readers = [
            await streams.enter_async_context(open_stream(api, "/api/security/stream")) for _ in range(PER_TOKEN)
        ]
        for reader in readers:  # (kept: a reader dropped closes its response)
            assert (await reader.next()).event == "connected"
        answer = await api.get("/api/security/stream")
        assert answer.status_code == 429
        assert "EVBUS_SSE_CLIENTS_PER_TOKEN" in answer.json()["error"]
        async with site.http() as other:  # a login session is another holder than the bearer token
            login = await other.post("/api/auth/login", json={"token": API_TOKEN})
            other.headers.pop("Authorization")
            other.cookies = login.cookies
            async with open_stream(other, "/api/security/stream") as stream:
                assert (await stream.next()).event == "connected"
    async with open_stream(api, "/api/security/stream") as stream:  # closed streams are given back
        assert (await stream.next()).event == "connected"
    assert await eventually(lambda: _held_none(site))


async def _held_none(site: Stack) -> bool:
    return not live_of(site).held


async def test_streams_need_a_token(site: Stack) -> None:
    async with site.http(token=None) as anonymous:
        for path in (
            "/api/messages/stream",
            "/api/events/stream",
            "/api/security/stream",
            "/api/devices/stream",
            "/api/telemetry/stream",
        ):
            answer = await anonymous.get(path)
            assert answer.status_code == 401, path


async def test_device_readings_are_streamed_filtered_and_resumable(site: Stack, api: httpx.AsyncClient) -> None:
    source, device = "evcc", f"lp.{uuid.uuid4().hex[:6]}"  # a '.' in a device name is escaped in its id
    device_id = f"evcc.{subjects.token(device)}"

    async def reading(power: float, n: int) -> None:
        at = "2026-11-21T10:00:00.000000Z"
        body = Reading(source=source, device=device, kind="evse", ts=at, changed=["powerW"], power_w=power)
        headers = {subjects.H_MSG_ID: f"sse-test:{device}:{n}"}
        await site.js.publish(subjects.telemetry(source, device), encode(body), headers=headers)

    async with (
        open_stream(api, "/api/devices/stream", device=device_id) as mine,
        open_stream(api, "/api/devices/stream", source="go-e") as others,
    ):
        start = (await mine.next()).id
        await others.next()
        await site.js.publish("telemetry.raw.mqtt.evcc.loadpoints.1.chargePower", b"1000")  # raw: not a reading
        for n, power in enumerate((1000.0, 2000.0, 3000.0)):
            await reading(power, n)
        got = await mine.events(3, name="reading")
        with pytest.raises(TimeoutError):
            await others.events(1, timeout=0.5)  # go-e: none of these
    data = [e.json() for e in got]
    assert [d["powerW"] for d in data] == [1000.0, 2000.0, 3000.0]
    assert {d["id"] for d in data} == {device_id}
    assert (data[0]["device"], data[0]["source"], data[0]["kind"]) == (device, source, "evse")
    assert [int(e.id or 0) for e in got] == [d["seq"] for d in data]
    async with open_stream(api, "/api/devices/stream", device=device_id, last_event_id=got[0].id) as resumed:
        await resumed.next()
        rest = await resumed.events(2, name="reading")
    assert [e.json()["powerW"] for e in rest] == [2000.0, 3000.0]
    async with open_stream(api, "/api/devices/stream", device=device_id, last_event_id=start) as again:
        await again.next()
        assert len(await again.events(3, name="reading")) == 3


async def test_a_station_connecting_shows_in_events_and_messages(full_stack: Stack) -> None:
    station, site = new_station(), full_stack
    async with (
        site.http() as api,
        open_stream(api, "/api/events/stream", identity=station) as events,
        open_stream(api, "/api/messages/stream", identity=station) as messages,
    ):
        start = (await events.next()).id
        await messages.next()
        async with charge_point(site.url(station), station, "ocpp1.6", Station16) as (cp, _):
            await cp.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"))
            boot = frames(await messages.events(2, name="message"))
            connected = (await events.events(1, name="event"))[0]
            reset = await api.post(f"/api/stations/{station}/commands/reset", json={"type": "soft"})
            assert reset.status_code == 200
            command = [e.json() for e in await events.events(3, name="event")]
        disconnected = (await events.events(1, name="event"))[0]
    assert [(m["method"], m["direction"], m["type"]) for m in boot] == [
        ("BootNotification", "IN", "CALL"),
        ("BootNotification", "OUT", "CALLRESULT"),
    ]
    assert boot[1]["payload"]["status"] == "Accepted"
    assert (connected.json()["kind"], connected.json()["name"]) == ("connection", "connected")
    assert connected.json()["body"]["protocol"] == "ocpp1.6"
    assert [(c["kind"], c["name"]) for c in command] == [
        ("command", "requested"),
        ("command", "sent"),
        ("command", "answered"),
    ]
    assert command[2]["body"]["response"] == {"status": "Accepted"}
    assert command[2]["body"]["commandId"] == reset.json()["commandId"]
    assert disconnected.json()["name"] == "disconnected"
    ocpp_start, events_start = (int(p) for p in (start or "").split("-"))
    ocpp_seq, events_seq = (int(p) for p in (disconnected.id or "").split("-"))
    assert ocpp_seq > ocpp_start  # a cursor over both streams
    assert events_seq >= events_start


async def test_security_events_are_streamed(api: httpx.AsyncClient) -> None:
    async with open_stream(api, "/api/security/stream", category="api_login_failed") as security:
        await security.next()
        refused = await api.post("/api/auth/login", json={"token": "not-the-token"})
        assert refused.status_code == 401
        event = (await security.events(1, name="security"))[0]
    sec = event.json()
    assert sec["category"] == "api_login_failed"
    assert "token" in sec["message"]
    assert sec["id"] == int(event.id or 0)
    assert sec["severity"] is not None


async def test_telemetry_stream_sends_the_telemetry_view(api: httpx.AsyncClient) -> None:
    async with open_stream(api, "/api/telemetry/stream") as stream:
        assert (await stream.next()).event == "connected"
        first = (await stream.events(1, name="telemetry"))[0].json()
    plain = (await api.get("/api/telemetry")).json()
    assert set(first) == set(plain)
    assert first["uptimeSeconds"] >= 0
