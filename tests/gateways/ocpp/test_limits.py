"""Limits (gateways/ocpp/limits.py): token buckets and limited security events with a clock the
test turns by hand, then each limit on a real socket."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from evbus.settings import Settings
from evbus.throttle import EVENT_INTERVAL_S, EventThrottle
from gateways.ocpp.limits import (
    DISCONNECT_AFTER_BURSTS,
    WITHIN,
    ConnectionLimits,
    ConnectionTable,
    HandshakeLimits,
    TokenBucket,
    address_of,
)
from schemas import ocpp_j, subjects
from tests.conftest import Stack, running
from tests.support import eventually, stored, stored_frames

# --- token bucket -------------------------------------------------------------------------------


def test_a_bucket_gives_its_burst_at_once_then_its_rate() -> None:
    bucket = TokenBucket.full(rate=2, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait(100.0) == pytest.approx(0.5)
    assert not bucket.take(100.4)
    assert bucket.take(100.5)
    assert not bucket.is_full(101.0)
    assert bucket.is_full(102.0)  # 1.5 s at 2/s refills 3
    assert bucket.tokens == 3  # never above the burst


def test_a_clock_that_does_not_move_forward_earns_nothing() -> None:
    bucket = TokenBucket.full(rate=10, burst=1, now=50.0)
    assert bucket.take(50.0)
    assert not bucket.take(49.0)
    assert not bucket.take(50.0)


def test_a_throttle_lets_one_event_through_per_interval_and_counts_the_rest() -> None:
    throttle = EventThrottle(interval=60)
    assert throttle.allow(0.0) == 0
    assert [throttle.allow(t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert throttle.allow(60.0) == 3
    assert throttle.allow(61.0) is None
    assert throttle.allow(500.0) == 1


# --- one connection's messages ------------------------------------------------------------------


def over_limit(rate: float = 1, burst: float = 5) -> ConnectionLimits:
    return ConnectionLimits(TokenBucket.full(rate, burst, 0.0))


def test_the_first_frame_over_the_limit_records_one_event() -> None:
    limits = over_limit()
    assert [limits.inbound(0.0) for _ in range(5)] == [WITHIN] * 5  # the burst
    first = limits.inbound(0.0)
    assert first.event is not None
    assert "over 1 messages/s (burst 5)" in first.event
    assert not first.disconnect
    assert [limits.inbound(0.0) for _ in range(10)] == [WITHIN] * 10  # stored and answered, no event


def test_a_station_still_over_the_limit_a_minute_later_gets_one_more_event_with_the_count() -> None:
    limits = over_limit(rate=1, burst=10)
    for _ in range(11):
        limits.inbound(0.0)
    verdicts = [limits.inbound(t / 2) for t in range(1, 2 * int(EVENT_INTERVAL_S) + 3)]  # 2/s for a minute
    events = [v.event for v in verdicts if v.event]
    assert len(events) == 1
    assert "more since the last event" in events[0]
    assert not any(v.disconnect for v in verdicts)


def test_a_station_that_keeps_flooding_is_disconnected_once() -> None:
    limits = over_limit(rate=1, burst=5)
    verdicts = [limits.inbound(0.0) for _ in range(5 + DISCONNECT_AFTER_BURSTS * 5)]
    assert [v.disconnect for v in verdicts].count(True) == 1
    assert verdicts[-1].disconnect
    assert verdicts[-1].event is not None
    assert "disconnected (close code 1008)" in verdicts[-1].event
    assert limits.inbound(0.0) == WITHIN  # frames still buffered are stored, nothing more is decided


def test_the_count_over_the_limit_starts_again_once_the_bucket_refilled() -> None:
    limits = over_limit(rate=1, burst=5)
    for _ in range(5 + DISCONNECT_AFTER_BURSTS * 5 - 1):  # one short of the disconnect
        assert not limits.inbound(0.0).disconnect
    assert limits.inbound(5.0) == WITHIN  # 5 s later: a whole burst earned back
    assert not any(limits.inbound(5.0).disconnect for _ in range(20))


def test_a_rate_of_zero_is_no_limit() -> None:
    table: ConnectionTable[str] = ConnectionTable(0, 60, alive=lambda _: True)
    limits = table.of("a", 0.0)
    assert all(limits.inbound(0.0) == WITHIN for _ in range(10_000))


def test_bad_frame_events_are_limited_with_the_count_held_back() -> None:
    limits = over_limit()
    assert limits.bad_frame("not valid JSON", 0.0) == "not valid JSON"
    assert [limits.bad_frame("x", t) for t in (1.0, 2.0)] == [None, None]
    assert limits.bad_frame("not a JSON array", EVENT_INTERVAL_S) == (
        "not a JSON array (2 more bad frames since the last event)"
    )


def test_the_table_forgets_closed_sockets_when_it_has_grown() -> None:
    open_ = {f"s{i}" for i in range(10)}
    table: ConnectionTable[str] = ConnectionTable(1, 5, alive=lambda key: key in open_)
    for i in range(3000):
        table.of(f"closed-{i}", 0.0)
    for key in open_:
        table.of(key, 0.0).inbound(0.0)
    assert len(table) <= 1024 + 10
    kept = table.of("s1", 0.0)
    assert kept.bucket is not None
    assert kept.bucket.tokens == 4  # the same state, not a new bucket


# --- handshakes per address ---------------------------------------------------------------------


def test_handshakes_over_the_burst_are_refused_with_one_event_per_interval() -> None:
    limits = HandshakeLimits(rate=0.5, burst=3)
    assert [limits.admit("10.0.0.1", 0.0) for _ in range(3)] == [None] * 3
    refused = limits.admit("10.0.0.1", 0.0)
    assert refused is not None
    assert refused.retry_after == 2  # one token at 0.5/s
    assert refused.event is not None
    assert "from 10.0.0.1: HTTP 429" in refused.event
    again = [limits.admit("10.0.0.1", 0.1) for _ in range(5)]
    assert all(r is not None and r.event is None for r in again)
    assert limits.admit("10.0.0.2", 0.1) is None  # another address has its own bucket
    assert limits.admit("10.0.0.1", 2.0) is None  # one token earned back
    assert [limits.admit("10.0.0.1", EVENT_INTERVAL_S) for _ in range(3)] == [None] * 3  # refilled
    late = limits.admit("10.0.0.1", EVENT_INTERVAL_S)
    assert late is not None
    assert late.event is not None
    assert late.event.endswith("; 5 more refused since the last event")


def test_handshake_buckets_are_bounded_forgetting_refilled_ones_first() -> None:
    limits = HandshakeLimits(rate=1, burst=2, max_addresses=100)
    assert limits.admit("busy", 0.0) is None
    assert limits.admit("busy", 0.0) is None
    for i in range(99):
        limits.admit(f"idle-{i}", 0.0)
    assert len(limits) == 100
    assert limits.admit("new", 10.0) is None  # every bucket refilled by now: all forgotten
    assert len(limits) == 1
    for i in range(500):
        limits.admit(f"many-{i}", 10.0)  # none refilled: the oldest go
    assert len(limits) <= 100


def test_no_handshake_limit_at_rate_zero() -> None:
    limits = HandshakeLimits(rate=0, burst=1)
    assert all(limits.admit("10.0.0.1", 0.0) is None for _ in range(1000))
    assert len(limits) == 0


@pytest.mark.parametrize("rate", [10.0, 0.0])
def test_failed_tls_handshakes_are_one_event_per_address_per_interval(rate: float) -> None:
    limits = HandshakeLimits(rate=rate, burst=2)
    assert limits.tls_failed("10.0.0.1", "UNSUPPORTED_PROTOCOL", 0.0) == "UNSUPPORTED_PROTOCOL"
    assert [limits.tls_failed("10.0.0.1", "HTTP_REQUEST", 1.0) for _ in range(4)] == [None] * 4
    assert limits.tls_failed("10.0.0.2", "HTTP_REQUEST", 1.0) == "HTTP_REQUEST"  # its own throttle
    assert limits.admit("10.0.0.1", 1.0) is None  # failures take no handshake tokens
    late = limits.tls_failed("10.0.0.1", "HTTP_REQUEST", EVENT_INTERVAL_S)
    assert late == "HTTP_REQUEST (4 more failed TLS handshakes from 10.0.0.1 since the last event)"
    assert len(limits) == 2  # in the same bounded table as the handshake buckets, even at rate 0


def test_an_address_that_only_fails_tls_keeps_its_throttle_when_the_table_fills() -> None:
    limits = HandshakeLimits(rate=1, burst=2, max_addresses=10)
    assert limits.tls_failed("scanner", "HTTP_REQUEST", 0.0) == "HTTP_REQUEST"
    for i in range(9):
        limits.admit(f"station-{i}", 1.0)
    limits.admit("one-more", 5.0)  # full: the idle ones go (the stations' buckets refilled by now) ...
    assert limits.tls_failed("scanner", "HTTP_REQUEST", 6.0) is None, "... not the scanner: still held back"


@pytest.mark.parametrize(
    ("remote", "address"),
    [("203.0.113.9:53211", "203.0.113.9"), ("::1:53211", "::1"), ("2001:db8::7:443", "2001:db8::7"), ("unix", "unix")],
)
def test_the_address_of_a_remote_end(remote: str, address: str) -> None:
    assert address_of(remote) == address


# --- on a real socket -----------------------------------------------------------------------------


async def events(stack: Stack, category: str) -> list[dict]:
    """This stack's security events of ``category`` (other tests share the EVENTS stream)."""
    messages = await stored(stack.js, subjects.security_event(category), subjects.STREAM_EVENTS)
    found = [msgspec.json.decode(m.data) for m in messages]
    assert stack.gateway is not None
    return [e for e in found if e.get("gateway") == stack.gateway.id]


def limited(settings: Settings, **changes: object) -> Settings:
    return settings.with_(gateway_id=f"limits-{uuid.uuid4().hex[:8]}", **changes)


@pytest.mark.nats
async def test_a_station_flooding_heartbeats_is_answered_recorded_once_and_stays(
    settings: Settings, station: str
) -> None:
    async with running(limited(settings, station_rate=5, station_burst=10)) as stack:
        async with websockets.connect(stack.url(station), subprotocols=["ocpp1.6"], compression=None) as ws:
            for n in range(40):  # 40 at once: 10 within the burst, ~30 over, below 10 bursts over
                await ws.send(ocpp_j.call(f"hb{n}", "Heartbeat", {}))
            answers = [msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10)) for _ in range(40)]
            assert sorted(a[1] for a in answers) == sorted(f"hb{n}" for n in range(40))
            assert all(a[0] == 3 for a in answers)
            await ws.send(ocpp_j.call("still-here", "Heartbeat", {}))
            assert msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10))[1] == "still-here"
        [event] = await eventually(lambda: events(stack, "rate_limited"))
        assert event["station"] == station
        assert event["remoteAddress"].startswith("127.0.0.1:")
        assert "over 5 messages/s (burst 10)" in event["detail"]
        frames = await stored_frames(stack.js, station)
        assert sum((m.headers or {}).get(subjects.H_DIRECTION) == "in" for m in frames) == 41  # nothing lost


async def flood(ws: websockets.ClientConnection, count: int) -> None:
    """Send ``count`` Heartbeats without waiting, then read until the socket closes."""
    for n in range(count):
        await ws.send(ocpp_j.call(f"hb{n}", "Heartbeat", {}))
    while True:
        await asyncio.wait_for(ws.recv(), 10)


@pytest.mark.nats
async def test_a_station_that_keeps_flooding_is_closed_with_1008(settings: Settings, station: str) -> None:
    async with running(limited(settings, station_rate=1, station_burst=3)) as stack:
        async with websockets.connect(stack.url(station), subprotocols=["ocpp1.6"], compression=None) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await flood(ws, 200)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008

        async def disconnected() -> list[dict]:
            return [
                msgspec.json.decode(m.data)
                for m in await stored_frames(stack.js, station)
                if m.subject.endswith(".conn.disconnected")
            ]

        [event] = await eventually(disconnected)
        assert event["closeCode"] == 1008
        recorded = await eventually(lambda: events(stack, "rate_limited"))
        assert any("disconnected (close code 1008)" in e["detail"] for e in recorded)
        inbound = [m for m in await stored_frames(stack.js, station) if (m.headers or {}).get(subjects.H_DIRECTION)]
        assert sum(m.headers[subjects.H_DIRECTION] == "in" for m in inbound) >= 3 + DISCONNECT_AFTER_BURSTS * 3


@pytest.mark.nats
async def test_a_flood_of_bad_frames_records_one_bad_frame_event(settings: Settings, station: str) -> None:
    async with running(limited(settings)) as stack:
        async with websockets.connect(stack.url(station), subprotocols=["ocpp2.0.1"], compression=None) as ws:
            for _ in range(20):
                await ws.send("not json")
                assert msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10))[:3] == [4, "-1", "RpcFrameworkError"]
        invalid = await eventually(lambda: stored(stack.js, subjects.ocpp_invalid(station, "in")))
        assert len(invalid) == 20  # each kept
        [event] = await eventually(lambda: events(stack, "bad_frame"))
        assert event["station"] == station
        assert event["detail"] == "not valid JSON"


@pytest.mark.nats
async def test_a_handshake_flood_from_one_address_gets_429(settings: Settings, station: str) -> None:
    async with running(limited(settings, handshake_rate=0.1, handshake_burst=3)) as stack:
        for n in range(3):
            async with websockets.connect(stack.url(f"{station}-{n}"), subprotocols=["ocpp1.6"]):
                pass
        for n in range(3):
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(stack.url(f"{station}-x{n}"), subprotocols=["ocpp1.6"]):
                    pass
            assert refused.value.response.status_code == 429
            assert int(refused.value.response.headers["Retry-After"]) >= 1
        # another address (all of 127/8 is this host) has its own bucket
        async with websockets.connect(
            stack.url(f"{station}-other"), subprotocols=["ocpp1.6"], local_addr=("127.0.0.2", 0)
        ) as ws:
            assert ws.protocol.state.name == "OPEN"
        [event] = await eventually(lambda: events(stack, "rate_limited"))  # one, for three refusals
        assert event.get("station") is None
        assert event["remoteAddress"].startswith("127.0.0.1:")
        assert "HTTP 429" in event["detail"]
