"""The simulator against the real stack (nats-server, gateway, CSMS processor, projections, API):
sessions end up as transactions, roundtrip counts match the stream, CSMS calls are answered
with schema-valid results and followed up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from evbus.passwords import hash_password
from evbus.settings import Settings
from evbus.sim import SimConfig, Simulator, simulate
from schemas import subjects
from schemas.ocpp_j import Protocol
from schemas.records import StationRecord, encode
from tests.conftest import Stack, running
from tests.sim.test_answers import valid
from tests.support import eventually, publish_call, stored_frames

NO_ERRORS = {"callErrors": 0, "timeouts": 0, "disconnects": 0, "handshakeFailures": 0, "badFrames": 0}


@pytest.fixture
async def accepting(settings: Settings) -> AsyncIterator[Stack]:
    """The whole stack, accepting every idTag (the simulator's cards are not registered)."""
    async with running(settings.with_(unknown_tokens="accept"), api=True) as s:
        yield s


def config(stack: Stack, **options: Any) -> SimConfig:
    assert stack.gateway is not None
    prefix = f"T{uuid.uuid4().hex[:8]}-"
    defaults: dict[str, Any] = {"stations": 1, "mode": "idle", "reboot_delay": 0.2, "backoff_base": 0.2}
    return SimConfig(url=f"ws://127.0.0.1:{stack.gateway.port}/ocpp", prefix=prefix, **(defaults | options))


async def truth(value: object) -> object:
    return value


async def calls(stack: Stack, station: str, action: str | None = None) -> list[dict[str, Any]]:
    """The payloads of the station's CALLs the stream holds (of ``action``, or all but BootNotification)."""
    found = []
    for m in await stored_frames(stack.js, station):
        h = m.headers or {}
        if h.get(subjects.H_DIRECTION) != "in" or h.get(subjects.H_TYPE) != "CALL":
            continue
        if (action is None and h[subjects.H_ACTION] != "BootNotification") or h[subjects.H_ACTION] == action:
            found.append(msgspec.json.decode(m.data)[3])
    return found


async def command(stack: Stack, station: str, protocol: Protocol, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send a CSMS CALL as the command processor does; the station's answer as the stream stored it."""
    unique_id = f"cmd-{uuid.uuid4().hex[:10]}"
    await publish_call(stack.js, station, [2, unique_id, action, payload], protocol)

    async def answered() -> list[Any] | None:
        for m in await stored_frames(stack.js, station):
            h = m.headers or {}
            if h.get(subjects.H_ID) == unique_id and h.get(subjects.H_DIRECTION) == "in":
                assert h[subjects.H_ACTION] == action
                return msgspec.json.decode(m.data)  # type: ignore[no-any-return]
        return None

    frame = await eventually(answered)
    if frame[0] == 3:
        valid(protocol, action, frame[2], "response")
    return frame


async def at_least(stack: Stack, station: str, action: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await calls(stack, station, action)
        return found if len(found) >= count else None

    return await eventually(enough)


# --- sessions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_sessions_become_transactions_with_energy(accepting: Stack, protocol: Protocol) -> None:
    stack = accepting
    async with simulate(config(stack, stations=2, protocol=protocol, mode="session", rate=5.0, seed=3)) as sim:
        await sim.until_booted(timeout=10)
        await eventually(lambda: truth(sim.stats.sessions_completed >= 2), timeout=15)
    report = sim.report
    assert report is not None
    assert report.errors == NO_ERRORS
    assert report.connected == 2
    assert report.sessions.completed == report.sessions.started >= 2

    await stack.projected()
    rows = []
    async with stack.http() as api:
        for station in sim.stations:
            response = await api.get("/api/transactions", params={"identity": station.id, "limit": 100})
            assert response.status_code == 200, response.text
            rows += response.json()
    assert len(rows) == report.sessions.completed
    assert all(r["status"] == "completed" and r["protocol"] == protocol for r in rows)
    natural = [r for r in rows if r["stopReason"] in ("EVDisconnected", "Local")]
    assert natural, rows
    assert all(r["energyWh"] > 0 for r in natural)
    assert {r["stopReason"] for r in rows} <= {"EVDisconnected", "Local", "Other"}  # Other: ended by the stop

    station = sim.stations[0].id
    meter_action = "MeterValues" if protocol == "ocpp1.6" else "TransactionEvent"
    meter = [p for p in await calls(stack, station, meter_action) if "meterValue" in p]
    assert meter
    statuses = {p.get("status") or p.get("connectorStatus") for p in await calls(stack, station, "StatusNotification")}
    assert statuses == (
        {"Available", "Preparing", "Charging", "Finishing"} if protocol == "ocpp1.6" else {"Available", "Occupied"}
    )


# --- roundtrip ----------------------------------------------------------------------------------


async def test_roundtrip_report_matches_the_stream(stack: Stack) -> None:
    async with simulate(config(stack, stations=4, mode="roundtrip")) as sim:
        await sim.until_booted(timeout=10)
        await eventually(lambda: truth(sim.stats.round_trips >= 400), timeout=15)
    report = sim.report
    assert report is not None
    assert report.errors == NO_ERRORS
    stored = {s.id: await calls(stack, s.id) for s in sim.stations}
    assert sum(len(c) for c in stored.values()) == report.round_trips
    assert report.round_trips_per_second > 0
    assert 0 < report.latency_ms.p50 <= report.latency_ms.p99 <= report.latency_ms.max
    actions = set()
    for s in sim.stations:
        actions |= {(m.headers or {}).get(subjects.H_ACTION) for m in await stored_frames(stack.js, s.id)}
    assert {"Heartbeat", "StatusNotification", "MeterValues"} <= actions


async def test_roundtrip_rate_is_paced(stack: Stack) -> None:
    sim = Simulator(config(stack, stations=2, mode="roundtrip", rate=20.0))
    await sim.start()
    try:
        await sim.until_booted(timeout=10)
        start = sim.stats.round_trips
        started = sim.elapsed
        await eventually(lambda: truth(sim.elapsed - started >= 2.0), timeout=5)
        done = sim.stats.round_trips - start
    finally:
        await sim.stop()
    assert 25 <= done <= 55  # 20/s for 2 s, give or take a period of each station


# --- what the stations sent ---------------------------------------------------------------------


async def test_the_call_log_matches_the_stream(stack: Stack) -> None:
    async with simulate(config(stack, stations=3, mode="roundtrip", record_calls=True)) as sim:
        await sim.until_booted(timeout=10)
        await eventually(lambda: truth(sim.stats.round_trips >= 30), timeout=15)
    log = sim.call_log()
    assert set(log) == {s.id for s in sim.stations}
    for station, ids in log.items():
        assert ids["sent"] == ids["answered"]  # a clean stop: every CALL written was answered
        assert len(set(ids["sent"])) == len(ids["sent"])
        stored = [
            (m.headers or {})[subjects.H_ID]
            for m in await stored_frames(stack.js, station)
            if (m.headers or {}).get(subjects.H_DIRECTION) == "in" and (m.headers or {}).get(subjects.H_TYPE) == "CALL"
        ]
        assert stored == ids["sent"]  # BootNotification included, in the order they were sent


def test_the_call_log_is_kept_only_when_asked_for() -> None:
    sim = Simulator(SimConfig(url="ws://127.0.0.1:9/ocpp", stations=2))
    assert sim.call_log() == {}
    assert all(s.call_log is None for s in sim.stations)


# --- answering the CSMS -------------------------------------------------------------------------


async def test_16_station_answers_and_follows_up(stack: Stack) -> None:
    async with simulate(config(stack, protocol="ocpp1.6")) as sim:
        await sim.until_booted(timeout=10)
        station = sim.stations[0].id

        got = await command(stack, station, "ocpp1.6", "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})
        assert got[2]["configurationKey"][0] == {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
        assert got[2]["unknownKey"] == ["Nope"]

        got = await command(
            stack, station, "ocpp1.6", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"}
        )
        assert got[2] == {"status": "Accepted"}
        await at_least(stack, station, "Heartbeat", 1)  # the boot answer said 300 s: this is the new interval

        got = await command(
            stack, station, "ocpp1.6", "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 2}
        )
        assert got[2] == {"status": "Accepted"}
        statuses = await at_least(stack, station, "StatusNotification", 3)  # connectors 1 and 2 after boot
        assert (statuses[2]["connectorId"], statuses[2]["status"]) == (2, "Available")

        got = await command(
            stack, station, "ocpp1.6", "RemoteStartTransaction", {"idTag": "REMOTE-1", "connectorId": 1}
        )
        assert got[2] == {"status": "Accepted"}
        (start,) = await at_least(stack, station, "StartTransaction", 1)
        assert (start["idTag"], start["connectorId"]) == ("REMOTE-1", 1)
        (stop,) = await at_least(stack, station, "StopTransaction", 1)
        assert stop["reason"] == "DeAuthorized"  # the CSMS does not know REMOTE-1 and says Invalid

        bad = await command(stack, station, "ocpp1.6", "GetConfiguration", {"key": "HeartbeatInterval"})
        assert bad[:3] == [4, bad[1], "TypeConstraintViolation"]
        unknown = await command(stack, station, "ocpp1.6", "Dance", {})
        assert unknown[2] == "NotImplemented"

        got = await command(stack, station, "ocpp1.6", "Reset", {"type": "Hard"})
        assert got[2] == {"status": "Accepted"}
        await at_least(stack, station, "BootNotification", 2)
        await eventually(lambda: truth(sim.stats.booted == 1 and sim.stats.reconnects == 1))
    assert sim.report is not None
    assert sim.report.csms_calls_answered == 7
    assert sim.report.errors == NO_ERRORS


async def test_201_station_answers_and_follows_up(stack: Stack) -> None:
    protocol: Protocol = "ocpp2.0.1"
    async with simulate(config(stack, protocol=protocol)) as sim:
        await sim.until_booted(timeout=10)
        station = sim.stations[0].id

        heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        unknown = {"component": {"name": "WarpCtrlr"}, "variable": {"name": "Speed"}}
        got = await command(stack, station, protocol, "GetVariables", {"getVariableData": [heartbeat, unknown]})
        results = got[2]["getVariableResult"]
        assert (results[0]["attributeStatus"], results[0]["attributeValue"]) == ("Accepted", "300")
        assert results[1]["attributeStatus"] == "UnknownComponent"

        got = await command(
            stack, station, protocol, "SetVariables", {"setVariableData": [heartbeat | {"attributeValue": "1"}]}
        )
        assert got[2]["setVariableResult"][0]["attributeStatus"] == "Accepted"
        await at_least(stack, station, "Heartbeat", 1)

        start = {"idToken": {"idToken": "REMOTE-2", "type": "Central"}, "remoteStartId": 77, "evseId": 1}
        got = await command(stack, station, protocol, "RequestStartTransaction", start)
        assert got[2] == {"status": "Accepted"}
        (started, *_) = await at_least(stack, station, "TransactionEvent", 1)
        assert started["eventType"] == "Started"
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 77
        assert started["idToken"] == {"idToken": "REMOTE-2", "type": "Central"}

        got = await command(
            stack, station, protocol, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 2}}
        )
        assert got[2] == {"status": "Accepted"}
        statuses = await at_least(stack, station, "StatusNotification", 4)  # 2 at boot, Occupied on EVSE 1, trigger
        assert {"evseId": 2, "connectorStatus": "Available"}.items() <= statuses[-1].items()

        got = await command(stack, station, protocol, "GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"})
        assert got[2] == {"status": "Accepted"}
        reports = await eventually(lambda: _last_report(stack, station))
        assert reports[-1]["requestId"] == 5

        bad = await command(stack, station, protocol, "GetBaseReport", {"reportBase": "FullInventory"})
        assert bad[2] == "OccurrenceConstraintViolation"
    assert sim.report is not None
    assert sim.report.errors == NO_ERRORS


async def _last_report(stack: Stack, station: str) -> list[dict[str, Any]] | None:
    reports = await calls(stack, station, "NotifyReport")
    return reports if reports and not reports[-1]["tbc"] else None


async def test_basic_auth_password(stack: Stack) -> None:
    good = config(stack, password="sim-secret-1")
    station = good.station_id(1)
    registry = await stack.js.key_value(subjects.BUCKET_REGISTRY)
    await registry.put(subjects.kv_key(station), encode(StationRecord(password_hash=hash_password("sim-secret-1"))))
    await eventually(lambda: truth(stack.gateway is not None and stack.gateway.registry.get(station)))

    async with simulate(msgspec.structs.replace(good, password="wrong")) as sim:
        await eventually(lambda: truth(sim.stats.handshake_failures >= 1))
        assert sim.stats.booted == 0
    async with simulate(good) as sim:
        await sim.until_booted(timeout=10)
    assert sim.report is not None
    assert sim.report.errors == NO_ERRORS
