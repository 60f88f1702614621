"""Commands end to end: REST → command processor → gateway → a real ``ocpp`` library station and
back, with every step in the stream (DESIGN §7, docs/adr/0008-commands.md).

One stack serves the module; the per-command tests share one station per protocol, every other
test connects stations of its own (a held or failing station would disturb the others).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from ocpp.exceptions import GenericError
from ocpp.v16 import call as call16

from evbus.settings import environment
from processors.commands import named
from schemas import subjects
from schemas.records import ConnectionEvent
from tests.conftest import Stack, running, stack_settings
from tests.stations import Charging16, Charging201, Station16, Station201, now
from tests.support import WireRecorder, charge_point, eventually, present, stored, stored_frames

pytestmark = pytest.mark.nats

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")
STATION_CLASSES: dict[str, type] = {"ocpp1.6": Station16, "ocpp2.0.1": Station201}
SOON = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
INLINE_PROFILE = {
    "id": 9,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]},
}
DELETE_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"}

# command → (a representative body, the action the station must get), per protocol
COMMON: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "reset": ({"type": "soft"}, {"ocpp1.6": "Reset", "ocpp2.0.1": "Reset"}),
    "unlock-connector": ({"connectorId": 1}, {"ocpp1.6": "UnlockConnector", "ocpp2.0.1": "UnlockConnector"}),
    "change-availability": (
        {"connectorId": 1, "type": "inoperative"},
        {"ocpp1.6": "ChangeAvailability", "ocpp2.0.1": "ChangeAvailability"},
    ),
    "clear-cache": ({}, {"ocpp1.6": "ClearCache", "ocpp2.0.1": "ClearCache"}),
    "trigger-message": (
        {"message": "StatusNotification", "connectorId": 1},
        {"ocpp1.6": "TriggerMessage", "ocpp2.0.1": "TriggerMessage"},
    ),
    "get-local-list-version": ({}, {"ocpp1.6": "GetLocalListVersion", "ocpp2.0.1": "GetLocalListVersion"}),
    "send-local-list": (
        {"listVersion": 4, "updateType": "full", "entries": [{"idTag": "TAG-1", "status": "Accepted"}]},
        {"ocpp1.6": "SendLocalList", "ocpp2.0.1": "SendLocalList"},
    ),
    "get-diagnostics": ({"location": "ftp://logs.example/up"}, {"ocpp1.6": "GetDiagnostics", "ocpp2.0.1": "GetLog"}),
    "update-firmware": (
        {"location": "https://fw.example/1.2.bin", "retrieveDate": SOON},
        {"ocpp1.6": "UpdateFirmware", "ocpp2.0.1": "UpdateFirmware"},
    ),
    "reserve-now": (
        {"connectorId": 1, "idTag": "TAG-1", "expiryDate": SOON},
        {"ocpp1.6": "ReserveNow", "ocpp2.0.1": "ReserveNow"},
    ),
    "cancel-reservation": ({"reservationId": 1}, {"ocpp1.6": "CancelReservation", "ocpp2.0.1": "CancelReservation"}),
    "set-charging-profile": (
        {"connectorId": 1, "profile": INLINE_PROFILE},
        {"ocpp1.6": "SetChargingProfile", "ocpp2.0.1": "SetChargingProfile"},
    ),
    "clear-charging-profile": (
        {"chargingProfileId": 9},
        {"ocpp1.6": "ClearChargingProfile", "ocpp2.0.1": "ClearChargingProfile"},
    ),
    "get-composite-schedule": (
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
        {"ocpp1.6": "GetCompositeSchedule", "ocpp2.0.1": "GetCompositeSchedule"},
    ),
    "get-log": (
        {"logType": "SecurityLog", "location": "https://logs.example/up"},
        {"ocpp1.6": "GetLog", "ocpp2.0.1": "GetLog"},
    ),
    "delete-certificate": (DELETE_HASH, {"ocpp1.6": "DeleteCertificate", "ocpp2.0.1": "DeleteCertificate"}),
}
PER_PROTOCOL: dict[str, dict[str, tuple[dict[str, Any], str]]] = {
    "ocpp1.6": {
        "remote-start": ({"idTag": "TAG-1", "connectorId": 1}, "RemoteStartTransaction"),
        "remote-stop": ({"transactionId": 1}, "RemoteStopTransaction"),
        "get-configuration": ({"keys": ["HeartbeatInterval", "NoSuchKey"]}, "GetConfiguration"),
        "change-configuration": ({"key": "HeartbeatInterval", "value": "300"}, "ChangeConfiguration"),
        "data-transfer": ({"vendorId": "com.example", "messageId": "ping", "data": "hello"}, "DataTransfer"),
        "install-certificate": (
            {"certificateType": "CentralSystemRootCertificate", "certificate": "-----BEGIN CERTIFICATE-----"},
            "InstallCertificate",
        ),
        "get-installed-certificate-ids": (
            {"certificateTypes": ["CentralSystemRootCertificate"]},
            "GetInstalledCertificateIds",
        ),
    },
    "ocpp2.0.1": {
        "remote-start": ({"idTag": "TAG-1", "connectorId": 1}, "RequestStartTransaction"),
        "remote-stop": ({"transactionId": "tx-1"}, "RequestStopTransaction"),
        "get-configuration": ({"keys": ["OCPPCommCtrlr.HeartbeatInterval"]}, "GetVariables"),
        "change-configuration": ({"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "300"}, "SetVariables"),
        "data-transfer": ({"vendorId": "com.example", "messageId": "ping", "data": {"n": 1}}, "DataTransfer"),
        "install-certificate": (
            {"certificateType": "CSMSRootCertificate", "certificate": "-----BEGIN CERTIFICATE-----"},
            "InstallCertificate",
        ),
        "get-installed-certificate-ids": ({"certificateTypes": ["CSMSRootCertificate"]}, "GetInstalledCertificateIds"),
        "get-variables": (
            {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]},
            "GetVariables",
        ),
        "set-variables": (
            {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"}]},
            "SetVariables",
        ),
        "get-base-report": ({"reportBase": "FullInventory"}, "GetBaseReport"),
        "customer-information": (
            {"report": True, "clear": False, "customerIdentifier": "cust-1"},
            "CustomerInformation",
        ),
        "set-display-message": ({"id": 1, "priority": "NormalCycle", "content": "Welcome"}, "SetDisplayMessage"),
    },
}


def case(protocol: str, command: str) -> tuple[dict[str, Any], str] | None:
    if command in PER_PROTOCOL[protocol]:
        return PER_PROTOCOL[protocol][command]
    if command in COMMON:
        body, actions = COMMON[command]
        return body, actions[protocol]
    return None


NAMED_CASES = [
    pytest.param(protocol, command, id=f"{protocol}-{command}")
    for protocol in PROTOCOLS
    for command in named.COMMANDS
    if protocol in named.protocols_of(command)
]


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("commands"))
    async with running(settings, api=True) as stack:
        yield stack


def new_id(prefix: str = "CMD") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def online(
    stack: Stack, cls: type, protocol: str, station: str | None = None, url: str | None = None
) -> AsyncIterator[tuple[Any, WireRecorder]]:
    """A booted station of ``cls`` connected (to ``url``, default the stack's gateway)."""
    station = station or new_id()
    async with charge_point(url or stack.url(station), station, protocol, cls) as (cp, wire):
        await cp.boot()
        await eventually(lambda: present(stack.js, station))
        yield cp, wire


@pytest.fixture(scope="module")
async def shared(site: Stack) -> AsyncIterator[dict[str, tuple[Any, WireRecorder]]]:
    """One answering station per protocol, for the per-command tests."""
    async with (
        online(site, Station16, "ocpp1.6") as v16,
        online(site, Station201, "ocpp2.0.1") as v201,
    ):
        yield {"ocpp1.6": v16, "ocpp2.0.1": v201}


def frames_with_id(wire: WireRecorder, unique_id: str) -> tuple[list[Any], list[Any]]:
    """The CALL the station received and the answer it sent for ``unique_id``."""
    received = [f for f in map(json.loads, wire.received) if f[0] == 2 and f[1] == unique_id]
    sent = [f for f in map(json.loads, wire.sent) if f[0] in (3, 4) and f[1] == unique_id]
    [call] = received
    [answer] = sent
    return call, answer


async def assert_stored(
    stack: Stack, station: str, command_id: str, answer_type: str = "CALLRESULT"
) -> dict[tuple[str, str], Any]:
    """The CALL (out) and its answer (in) are in the stream, with the command id as Ocpp-Id;
    returns the stored frames (decoded) by (direction, type)."""
    frames = await stored_frames(stack.js, station)
    found = {
        (m.subject.split(".")[2], m.headers.get(subjects.H_TYPE, "")): json.loads(m.data)
        for m in frames
        if m.headers and m.headers.get(subjects.H_ID) == command_id
    }
    assert {("out", "CALL"), ("in", answer_type)} <= set(found), found
    return found


async def post_command(
    client: httpx.AsyncClient, station: str, command: str, body: Any = None, **params: Any
) -> httpx.Response:
    return await client.post(f"/api/stations/{station}/commands/{command}", json=body or {}, params=params)


async def transactions(client: httpx.AsyncClient, station: str) -> list[dict[str, Any]]:
    r = await client.get("/api/transactions", params={"identity": station})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def accepted(r: httpx.Response) -> bool:
    """A 200 whose station answered Accepted."""
    return r.status_code == 200 and r.json()["status"] == "Accepted"


async def put_token(client: httpx.AsyncClient, id_tag: str) -> None:
    r = await client.put("/api/tokens", json=[{"idTag": id_tag, "status": "Accepted"}])
    assert r.status_code == 200, r.text


# --- every named command, per protocol --------------------------------------------------------


def test_every_named_command_has_a_case() -> None:
    missing = [(p, c) for p in PROTOCOLS for c in named.COMMANDS if p in named.protocols_of(c) and case(p, c) is None]
    assert not missing


@pytest.mark.parametrize(("protocol", "command"), NAMED_CASES)
async def test_named_command(
    site: Stack,
    api: httpx.AsyncClient,
    shared: dict[str, tuple[Any, WireRecorder]],
    protocol: str,
    command: str,
) -> None:
    found = case(protocol, command)
    assert found is not None, f"no body for {command} on {protocol}"
    body, action = found
    cp, wire = shared[protocol]
    before = len(cp.requests)

    r = await post_command(api, cp.id, command, body)

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["action"] == action
    assert answer["command"] == command
    assert answer["identity"] == cp.id
    assert [a for a, _ in cp.requests[before:]] == [action]
    call, result = frames_with_id(wire, answer["commandId"])
    assert call[2] == action
    assert result[0] == 3
    assert answer["response"] == result[2]
    assert answer["status"] == result[2].get("status", "Answered")
    assert answer["protocol"] == protocol
    assert answer["durationMs"] >= 0
    if command == "reserve-now":
        sent_id = call[3]["reservationId" if protocol == "ocpp1.6" else "id"]
        assert answer["reservationId"] == sent_id
    in_stream = await assert_stored(site, cp.id, answer["commandId"])
    assert in_stream[("out", "CALL")] == call  # what the station got is what was stored
    assert in_stream[("in", "CALLRESULT")] == result


# --- raw calls --------------------------------------------------------------------------------


async def test_raw_call_keeps_the_payload_as_given(
    site: Stack, api: httpx.AsyncClient, shared: dict[str, tuple[Any, WireRecorder]]
) -> None:
    cp, wire = shared["ocpp1.6"]
    payload = '{"value": "60",  "key": "HeartbeatInterval"}'  # not alphabetical, odd spacing
    r = await api.post(
        f"/api/stations/{cp.id}/call", content=f'{{"action": "ChangeConfiguration", "payload": {payload}}}'
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["response"] == {"status": "Accepted"}
    assert answer["status"] == "Accepted"
    assert f'[2,"{answer["commandId"]}","ChangeConfiguration",{payload}]' in wire.received
    assert cp.seen("ChangeConfiguration")[-1] == {"value": "60", "key": "HeartbeatInterval"}
    await assert_stored(site, cp.id, answer["commandId"])


async def test_raw_call_2x(site: Stack, api: httpx.AsyncClient, shared: dict[str, tuple[Any, WireRecorder]]) -> None:
    cp, _wire = shared["ocpp2.0.1"]
    r = await api.post(f"/api/stations/{cp.id}/call", json={"action": "GetTransactionStatus", "payload": {}})
    assert r.status_code == 200, r.text
    assert r.json()["response"] == {"messagesInQueue": False}
    assert r.json()["status"] == "Answered"
    await assert_stored(site, cp.id, r.json()["commandId"])


async def test_raw_call_invalid(api: httpx.AsyncClient, shared: dict[str, tuple[Any, WireRecorder]]) -> None:
    cp, _ = shared["ocpp1.6"]
    before = len(cp.requests)
    invalid = await api.post(f"/api/stations/{cp.id}/call", json={"action": "Reset", "payload": {"type": "Sideways"}})
    assert invalid.status_code == 422, invalid.text
    assert "Sideways" in json.dumps(invalid.json()["detail"])  # the schema error
    not_an_action = await api.post(f"/api/stations/{cp.id}/call", json={"action": "reset the thing!", "payload": {}})
    assert not_an_action.status_code == 422, not_an_action.text
    not_1_6 = await api.post(f"/api/stations/{cp.id}/call", json={"action": "RequestStartTransaction", "payload": {}})
    assert not_1_6.status_code == 422, not_1_6.text
    assert len(cp.requests) == before  # nothing reached the station


# --- errors -----------------------------------------------------------------------------------


async def test_unknown_station_command_and_member(
    api: httpx.AsyncClient, shared: dict[str, tuple[Any, WireRecorder]]
) -> None:
    nobody = new_id("NOBODY")
    r = await post_command(api, nobody, "reset", {"type": "soft"})
    assert r.status_code == 404, r.text
    r = await api.post(f"/api/stations/{nobody}/call", json={"action": "Reset", "payload": {"type": "Soft"}})
    assert r.status_code == 404, r.text
    cp, _ = shared["ocpp1.6"]
    r = await post_command(api, cp.id, "make-coffee", {})
    assert r.status_code == 404, r.text
    r = await post_command(api, cp.id, "reset", {"type": "soft", "bogus": 1})
    assert r.status_code == 422, r.text
    assert "bogus" in r.text
    r = await post_command(api, cp.id, "set-display-message", {"id": 1, "priority": "NormalCycle", "content": "x"})
    assert r.status_code == 422, r.text  # a 2.x-only command on a 1.6 station


async def test_offline_station_409(site: Stack, api: httpx.AsyncClient) -> None:
    station = new_id()
    async with online(site, Station16, "ocpp1.6", station):
        pass
    await eventually(lambda: _absent(site, station))
    await site.projected()
    r = await post_command(api, station, "reset", {"type": "soft"})
    assert r.status_code == 409, r.text
    r = await api.post(f"/api/stations/{station}/call", json={"action": "Reset", "payload": {"type": "Soft"}})
    assert r.status_code == 409, r.text


async def _absent(stack: Stack, station: str) -> bool:
    return not await present(stack.js, station)


async def test_callerror_502(site: Stack, api: httpx.AsyncClient) -> None:
    async with online(site, Station201, "ocpp2.0.1") as (cp, wire):
        cp.failing["Reset"] = GenericError(description="busy", details={"why": "testing"})
        r = await post_command(api, cp.id, "reset", {"type": "hard"})
        assert r.status_code == 502, r.text
        detail = r.json()["detail"]
        assert detail["errorCode"] == "GenericError"
        assert detail["errorDescription"] == "busy"
        assert detail["errorDetails"] == {"why": "testing"}
        _, sent = frames_with_id(wire, detail["commandId"])
        assert sent[0] == 4
        await assert_stored(site, cp.id, detail["commandId"], "CALLERROR")


async def test_no_answer_504(site: Stack, api: httpx.AsyncClient) -> None:
    async with online(site, Station16, "ocpp1.6") as (cp, _):
        gate = cp.holding["ChangeConfiguration"] = asyncio.Event()
        try:
            body = {"key": "HeartbeatInterval", "value": "1"}
            r = await post_command(api, cp.id, "change-configuration", body, timeout=0.5)
            assert r.status_code == 504, r.text
            assert r.json()["detail"]["status"] == "timeout"
            assert cp.seen("ChangeConfiguration") == [{"key": "HeartbeatInterval", "value": "1"}]
        finally:
            gate.set()


# --- without waiting --------------------------------------------------------------------------


async def test_wait_false_202_then_get(site: Stack, api: httpx.AsyncClient) -> None:
    async with online(site, Station16, "ocpp1.6") as (cp, _):
        r = await post_command(api, cp.id, "reset", {"type": "hard"}, wait="false")
        assert r.status_code == 202, r.text
        command_id = r.json()["commandId"]
        assert r.headers["Location"] == f"/api/commands/{command_id}"

        async def answered() -> dict[str, Any] | None:
            got = await api.get(f"/api/commands/{command_id}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            return body if body["status"] == "answered" else None

        shown = await eventually(answered)
        assert shown is not None
        assert shown["response"] == {"status": "Accepted"}
        assert cp.seen("Reset") == [{"type": "Hard"}]


# --- status round call ------------------------------------------------------------------------


async def test_status_round_call_two_protocols(site: Stack, api: httpx.AsyncClient) -> None:
    async with (
        online(site, Station16, "ocpp1.6") as (a, _),
        online(site, Station201, "ocpp2.0.1") as (b, _),
    ):
        r = await api.post("/api/stations/status-round-call", json={"identities": [a.id, b.id]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stations"] == 2
        assert body["accepted"] == 2
        by_station = {x["identity"]: x for x in body["results"]}
        assert by_station[a.id]["status"] == by_station[b.id]["status"] == "Accepted"
        assert a.seen("TriggerMessage")[-1]["requested_message"] == "StatusNotification"
        assert b.seen("TriggerMessage")[-1]["requested_message"] == "StatusNotification"


# --- disconnect -------------------------------------------------------------------------------


async def test_disconnect(site: Stack, api: httpx.AsyncClient) -> None:
    async with online(site, Station16, "ocpp1.6") as (cp, wire):
        r = await api.post(f"/api/connections/{cp.id}/disconnect", json={"reason": "maintenance"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "disconnected"
        await asyncio.wait_for(wire.wait_closed(), 5)
        assert wire.close_reason
        assert "maintenance" in wire.close_reason

    async def disconnected() -> list[ConnectionEvent]:
        found = await stored(site.js, subjects.ocpp_conn(cp.id, "disconnected"))
        return [msgspec.json.decode(m.data, type=ConnectionEvent) for m in found]

    events = await eventually(disconnected)
    assert events[-1].reason
    assert "maintenance" in events[-1].reason
    await eventually(lambda: _absent(site, cp.id))
    await site.projected()
    again = await api.post(f"/api/connections/{cp.id}/disconnect")
    assert again.status_code == 409, again.text
    r = await post_command(api, cp.id, "reset", {"type": "soft"})
    assert r.status_code == 409, r.text


# --- two gateways on one bus ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway_process(stack: Stack, gateway_id: str) -> AsyncIterator[str]:
    """``evbus gateway`` as a process of its own on the stack's NATS; yields its OCPP url."""
    env = environment(
        nats_url=stack.settings.nats_url,
        gateway_id=gateway_id,
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        data_dir=stack.settings.data_dir / gateway_id,
        log_level="WARNING",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evbus.cli", "gateway", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout

        async def listening() -> str:
            while line := (await stdout.readline()).decode():
                if match := re.search(r"(ws://127\.0\.0\.1:\d+/ocpp)", line):
                    return match.group(1)
            raise AssertionError(f"evbus gateway exited ({await process.wait()}) before it listened")

        yield await asyncio.wait_for(listening(), 60)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def test_a_command_reaches_a_station_on_another_gateway_process(site: Stack, api: httpx.AsyncClient) -> None:
    async with gateway_process(site, "gw-2") as ocpp_url:
        station = new_id()
        async with online(site, Station201, "ocpp2.0.1", station, f"{ocpp_url}/{station}") as (cp, wire):
            r = await post_command(api, station, "reset", {"type": "soft"})
            assert r.status_code == 200, r.text
            assert r.json()["response"] == {"status": "Accepted"}
            assert cp.seen("Reset") == [{"type": "OnIdle"}]
            frames = await stored_frames(site.js, station)
            headers = [m.headers or {} for m in frames]
            call_and_answer = [h for h in headers if h.get(subjects.H_ID) == r.json()["commandId"]]
            assert len(call_and_answer) == 2
            assert {h.get(subjects.H_GATEWAY) for h in call_and_answer} == {"gw-2"}
            frames_with_id(wire, r.json()["commandId"])


# --- remote start and stop --------------------------------------------------------------------


async def test_remote_start_and_stop_16(site: Stack, api: httpx.AsyncClient) -> None:
    id_tag = new_id("TAG")
    await put_token(api, id_tag)
    async with online(site, Charging16, "ocpp1.6") as (cp, _):
        r = await post_command(api, cp.id, "remote-start", {"idTag": id_tag, "connectorId": 1})
        assert accepted(r), r.text
        await eventually(lambda: _async(cp.started or cp.errors))
        assert not cp.errors, cp.errors
        await site.projected()
        [tx] = await transactions(api, cp.id)
        assert tx["status"] == "active"
        assert tx["idTag"] == id_tag
        assert tx["transactionId"] == str(cp.started[0])
        assert cp.id_tag_infos[0]["status"] == "Accepted"  # the token PUT above

        r = await post_command(api, cp.id, "remote-stop", {"transactionId": tx["transactionId"]})
        assert accepted(r), r.text
        assert cp.seen("RemoteStopTransaction") == [{"transaction_id": cp.started[0]}]
        await eventually(lambda: _async(cp.stopped or cp.errors))
        assert not cp.errors, cp.errors
        await site.projected()
        [done] = await transactions(api, cp.id)
        assert done["status"] == "completed"
        assert done["stopReason"] == "Remote"


async def test_remote_start_and_stop_201(site: Stack, api: httpx.AsyncClient) -> None:
    id_tag = new_id("TAG")
    async with online(site, Charging201, "ocpp2.0.1") as (cp, _):
        r = await post_command(api, cp.id, "remote-start", {"idTag": id_tag, "connectorId": 1})
        assert accepted(r), r.text
        [request] = cp.seen("RequestStartTransaction")
        assert request["id_token"] == {"id_token": id_tag, "type": "Central"}
        await eventually(lambda: _async(cp.started or cp.errors))
        assert not cp.errors, cp.errors
        await site.projected()
        [tx] = await transactions(api, cp.id)
        assert tx["status"] == "active"
        assert tx["idTag"] == id_tag
        assert tx["transactionId"] == cp.started[0]

        r = await post_command(api, cp.id, "remote-stop", {"transactionId": tx["transactionId"]})
        assert accepted(r), r.text
        await eventually(lambda: _async(cp.stopped or cp.errors))
        assert not cp.errors, cp.errors
        await site.projected()
        [done] = await transactions(api, cp.id)
        assert done["status"] == "completed"
        assert done["stopReason"] == "Remote"


async def _async(value: Any) -> Any:
    return value


# --- reservations -----------------------------------------------------------------------------


async def test_reservation_used_and_cancelled(site: Stack, api: httpx.AsyncClient) -> None:
    id_tag = new_id("TAG")
    await put_token(api, id_tag)
    async with online(site, Charging16, "ocpp1.6") as (cp, _):
        body = {"connectorId": 1, "idTag": id_tag, "expiryDate": SOON}
        r = await post_command(api, cp.id, "reserve-now", body)
        assert accepted(r), r.text
        used = r.json()["reservationId"]
        assert cp.seen("ReserveNow")[-1]["reservation_id"] == used

        # the driver arrives: the station starts on the reservation
        cp.reservation_id = used
        r = await post_command(api, cp.id, "remote-start", {"idTag": id_tag, "connectorId": 1})
        assert r.status_code == 200, r.text
        await eventually(lambda: _async(cp.started or cp.errors))
        assert not cp.errors, cp.errors

        r = await post_command(api, cp.id, "reserve-now", {**body, "connectorId": 2})
        assert r.status_code == 200, r.text
        cancelled = r.json()["reservationId"]
        assert cancelled != used
        r = await post_command(api, cp.id, "cancel-reservation", {"reservationId": cancelled})
        assert accepted(r), r.text

        await site.projected()
        r = await api.get("/api/reservations", params={"identity": cp.id})
        assert r.status_code == 200, r.text
        statuses = {x["reservationId"]: x["status"] for x in r.json()}
        assert statuses == {used: "used", cancelled: "cancelled"}


async def test_a_station_starts_on_its_own_with_a_reservation(site: Stack, api: httpx.AsyncClient) -> None:
    id_tag = new_id("TAG")
    await put_token(api, id_tag)
    async with online(site, Station16, "ocpp1.6") as (cp, _):
        r = await post_command(api, cp.id, "reserve-now", {"connectorId": 0, "idTag": id_tag, "expiryDate": SOON})
        assert r.status_code == 200, r.text
        reservation = r.json()["reservationId"]
        start = call16.StartTransaction(
            connector_id=1, id_tag=id_tag, meter_start=0, timestamp=now(), reservation_id=reservation
        )
        result = await cp.call(start, suppress=False)
        assert result.id_tag_info["status"] == "Accepted"
        await site.projected()
        r = await api.get("/api/reservations", params={"identity": cp.id})
        assert r.status_code == 200, r.text
        [shown] = r.json()
        assert shown["reservationId"] == reservation
        assert shown["status"] == "used"


# --- status notifications that follow commands ------------------------------------------------


async def test_firmware_and_diagnostics_progress_shows_on_the_station(site: Stack, api: httpx.AsyncClient) -> None:
    async with online(site, Station16, "ocpp1.6") as (cp, _):
        r = await post_command(api, cp.id, "update-firmware", {"location": "https://fw.example/cp.bin"})
        assert r.status_code == 200, r.text
        for status in ("Downloading", "Downloaded", "Installing", "Installed"):
            await cp.call(call16.FirmwareStatusNotification(status=status))
        r = await post_command(api, cp.id, "get-diagnostics", {"location": "ftp://logs.example/"})
        assert r.status_code == 200, r.text
        await cp.call(call16.DiagnosticsStatusNotification(status="Uploading"))
        await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded"))
        await site.projected()
        station = (await api.get(f"/api/stations/{cp.id}")).json()
        assert station["firmwareStatus"] == "Installed"
        assert station["diagnosticsStatus"] == "Uploaded"
        assert station["firmwareStatusAt"] is not None
