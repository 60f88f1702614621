"""1.6 transaction ids against a real nats-server: retried starts, unknown stops, processor restarts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec
import pytest
import websockets

from evbus.settings import Settings
from schemas import subjects
from tests.conftest import Stack, running
from tests.support import RawStation, eventually, stored

pytestmark = pytest.mark.nats

START = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"}


@contextlib.asynccontextmanager
async def station_16(stack: Stack, station: str) -> AsyncIterator[RawStation]:
    async with websockets.connect(stack.url(station), subprotocols=["ocpp1.6"], compression=None) as ws:
        yield RawStation(ws)


async def test_a_retried_start_gets_the_same_transaction_id(stack: Stack, station: str) -> None:
    async with station_16(stack, station) as cp:
        first = await cp.call("StartTransaction", START, unique_id="start-1")
        retry = await cp.call("StartTransaction", START, unique_id="start-1")
        other = await cp.call("StartTransaction", START, unique_id="start-2")
    assert first == retry  # same answer, same transactionId
    assert other[2]["transactionId"] != first[2]["transactionId"]
    starts = await stored(stack.js, subjects.ocpp_frame(station, "in", "StartTransaction"))
    assert len(starts) == 3  # the wire is kept as it happened: the retry is stored too


async def test_a_retry_after_reconnecting_gets_the_same_id(stack: Stack, station: str) -> None:
    async with station_16(stack, station) as cp:
        first = await cp.call("StartTransaction", START, unique_id="queued-start")
    async with station_16(stack, station) as cp:
        again = await cp.call("StartTransaction", START, unique_id="queued-start")
    assert again[2]["transactionId"] == first[2]["transactionId"]


@pytest.mark.parametrize("unknown_id", [0, -1, 2_000_000_000])
async def test_stops_for_unknown_ids_are_answered_and_recorded(stack: Stack, station: str, unknown_id: int) -> None:
    stop = {"transactionId": unknown_id, "meterStop": 10, "timestamp": "2026-11-21T11:00:00Z", "idTag": "TAG"}
    async with station_16(stack, station) as cp:
        answer = await cp.call("StopTransaction", stop)
        assert answer[0] == 3
        assert answer[2]["idTagInfo"]["status"] in ("Accepted", "Invalid")
        answer = await cp.call("StopTransaction", {k: v for k, v in stop.items() if k != "idTag"})
        assert answer[:3] == [3, answer[1], {}]
    orphans = await eventually(
        lambda: stored(stack.js, subjects.transaction_event(station, "orphan_stop"), subjects.STREAM_EVENTS)
    )
    body = msgspec.json.decode(orphans[0].data)
    assert body["transactionId"] == unknown_id
    assert body["station"] == station
    assert len(await stored(stack.js, subjects.ocpp_frame(station, "in", "StopTransaction"))) == 2


async def test_a_stop_for_an_issued_id_is_not_an_orphan(stack: Stack, station: str) -> None:
    async with station_16(stack, station) as cp:
        started = await cp.call("StartTransaction", START)
        stop = {"transactionId": started[2]["transactionId"], "meterStop": 10, "timestamp": "2026-11-21T11:00:00Z"}
        assert (await cp.call("StopTransaction", stop))[0] == 3
        assert (await cp.call("Heartbeat", {}))[0] == 3
    assert await stored(stack.js, subjects.transaction_event(station, "orphan_stop"), subjects.STREAM_EVENTS) == []


async def test_transaction_ids_stay_unique_across_a_processor_restart(settings: Settings, station: str) -> None:
    ids: list[int] = []
    for round_ in range(3):  # each round is a fresh gateway and processor on the same stream
        async with running(settings) as stack, station_16(stack, station) as cp:
            for n in range(5):
                answer = await cp.call("StartTransaction", START, unique_id=f"r{round_}-{n}")
                ids.append(answer[2]["transactionId"])
    assert len(set(ids)) == len(ids) == 15
    assert ids == sorted(ids)
    assert all(0 < i < 2**31 for i in ids)


async def test_calls_stored_while_the_processor_was_down_are_answered_after_it_returns(
    settings: Settings, station: str
) -> None:
    async with running(settings, processor=False) as gateway_only, station_16(gateway_only, station) as cp:
        await cp.ws.send('[2, "while-down", "Heartbeat", {}]')

        async def stored_call() -> list:
            return await stored(gateway_only.js, subjects.ocpp_frame(station, "in", "Heartbeat"))

        await eventually(stored_call)
        async with running(settings, gateway=False):
            answer = await cp.recv()
            assert answer[:2] == [3, "while-down"]
