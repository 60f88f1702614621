"""Every call a station may send gets exactly one answer, and that answer is valid OCPP.

A minimal valid request for each CS→CSMS action of each version (built from the official schema)
goes through ``answer``; its CALLRESULT must pass the action's response schema. Bad payloads get
the CALLERROR code their version prescribes. One real-server test sends the same frames over a
websocket and reads the answers back from the gateway.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import msgspec
import pytest
import websockets
from websockets.typing import Subprotocol

from evbus.settings import Settings
from processors.csms import v16, v21, v201
from processors.csms.answer import Answer, answer
from processors.csms.context import CallContext, Payload, Services
from processors.csms.routing import routes
from processors.csms.transactions import MemoryTransactionIds
from schemas import ocpp_j, payloads, subjects
from schemas.ocpp_j import Call, MessageType, Protocol
from schemas.records import TokenRecord
from tests.conftest import Stack
from tests.support import eventually, stored_frames
from tests.support_payloads import example

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
STATION = "CP-unit"

V16_ACTIONS = {
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "SecurityEventNotification",
    "SignCertificate",
    "LogStatusNotification",
    "SignedFirmwareStatusNotification",
}
V201_ACTIONS = {
    "Authorize",
    "BootNotification",
    "ClearedChargingLimit",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
    "SignCertificate",
    "StatusNotification",
    "TransactionEvent",
}
V21_ACTIONS = V201_ACTIONS | {
    "BatterySwap",
    "ClosePeriodicEventStream",
    "GetCertificateChainStatus",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "OpenPeriodicEventStream",
    "PullDynamicScheduleUpdate",
    "ReportDERControl",
    "VatNumberValidation",
}

ROUTE_TABLES: dict[Protocol, dict[str, Any]] = {"ocpp1.6": v16.ROUTES, "ocpp2.0.1": v201.ROUTES, "ocpp2.1": v21.ROUTES}
EVERY_ACTION = [(protocol, action) for protocol, table in ROUTE_TABLES.items() for action in sorted(table)]


# --- in-memory services ---------------------------------------------------------------------------


class RecordingEvents:
    def __init__(self) -> None:
        self.orphan_stops: list[tuple[str, int | str, str]] = []

    async def orphan_stop(self, station: str, transaction_id: int | str, unique_id: str) -> None:
        self.orphan_stops.append((station, transaction_id, unique_id))


def memory_services(settings: Settings | None = None, tokens: dict[str, TokenRecord] | None = None) -> Services:
    return Services(
        settings=settings or Settings(),
        tokens=tokens if tokens is not None else {},  # a dict is a Tokens: .get(id_tag) -> record | None
        transactions=MemoryTransactionIds(),
        events=RecordingEvents(),
        clock=lambda: NOW,
    )


def request(protocol: Protocol, action: str) -> dict[str, Any]:
    """The minimal valid request payload of ``action``, checked against its schema first."""
    schema = payloads.schema(protocol, action, "request")
    assert schema is not None, f"{protocol} has no request schema for {action}"
    payload = example(schema)
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    assert validator.is_valid(payload), [e.message for e in validator.iter_errors(payload)]
    return payload  # type: ignore[no-any-return]


def parse_call(frame: str, protocol: Protocol) -> Call:
    message = ocpp_j.parse(frame, protocol)
    assert isinstance(message, Call), message
    return message


async def answer_frame(
    protocol: Protocol, action: str, payload: dict[str, Any], services: Services | None = None
) -> tuple[Answer, list[Any]]:
    call = parse_call(ocpp_j.call(f"id-{action}", action, payload), protocol)
    reply = await answer(call, STATION, protocol, services or memory_services())
    assert reply is not None, f"{protocol} {action} got no answer"
    return reply, msgspec.json.decode(reply.frame)


def assert_valid_response(protocol: Protocol, action: str, payload: Any) -> None:
    invalid = payloads.validate(protocol, action, payload, "response")
    assert invalid is None, f"{protocol} {action} answered {payload!r}: {invalid}"


# --- the route tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "expected"), [("ocpp1.6", V16_ACTIONS), ("ocpp2.0.1", V201_ACTIONS), ("ocpp2.1", V21_ACTIONS)]
)
def test_route_table_covers_exactly_the_station_calls(protocol: Protocol, expected: set[str]) -> None:
    assert set(routes(protocol)) == expected
    assert set(ROUTE_TABLES[protocol]) == expected


@pytest.mark.parametrize(("protocol", "action"), EVERY_ACTION)
def test_every_routed_action_has_request_and_response_schemas(protocol: Protocol, action: str) -> None:
    for kind in ("request", "response"):
        schema = payloads.schema(protocol, action, kind)
        assert schema is not None, f"{protocol} has no {kind} schema for {action}"
        assert jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(example(schema))


# --- every action, answered -----------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "action"), EVERY_ACTION)
async def test_minimal_call_gets_a_valid_callresult(protocol: Protocol, action: str) -> None:
    reply, frame = await answer_frame(protocol, action, request(protocol, action))

    assert reply.kind == "CALLRESULT", frame
    assert frame[:2] == [MessageType.CALLRESULT, f"id-{action}"]
    assert_valid_response(protocol, action, frame[2])


async def test_stop_of_a_transaction_never_started_is_recorded_as_an_orphan() -> None:
    services = memory_services()
    payload = request("ocpp1.6", "StopTransaction")

    reply, _ = await answer_frame("ocpp1.6", "StopTransaction", payload, services)

    assert reply.kind == "CALLRESULT"
    assert services.events.orphan_stops == [(STATION, payload["transactionId"], "id-StopTransaction")]  # type: ignore[attr-defined]


async def test_send_gets_no_answer() -> None:
    frame = msgspec.json.encode(
        [6, "send-1", "NotifyPeriodicEventStream", request("ocpp2.1", "NotifyPeriodicEventStream")]
    )
    call = parse_call(frame.decode(), "ocpp2.1")
    assert call.type == MessageType.SEND

    assert await answer(call, STATION, "ocpp2.1", memory_services()) is None


@pytest.mark.parametrize(
    ("protocol", "action", "code"),
    [
        ("ocpp1.6", "Reset", "NotSupported"),
        ("ocpp2.0.1", "RequestStartTransaction", "NotSupported"),
        ("ocpp2.1", "RequestStartTransaction", "NotSupported"),
        ("ocpp1.6", "FooBar", "NotImplemented"),
        ("ocpp2.0.1", "FooBar", "NotImplemented"),
        ("ocpp2.1", "FooBar", "NotImplemented"),
    ],
)
async def test_calls_the_csms_does_not_answer(protocol: Protocol, action: str, code: str) -> None:
    payload = request(protocol, action) if payloads.knows(protocol, action) else {}

    reply, frame = await answer_frame(protocol, action, payload)

    assert reply.kind == "CALLERROR"
    assert frame[:3] == [MessageType.CALLERROR, f"id-{action}", code]


# --- schema errors map to the version's CALLERROR codes -------------------------------------------

START_16 = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-11-21T10:00:00Z"}
AUTHORIZE_201 = {"idToken": {"idToken": "TAG", "type": "ISO14443"}}


@pytest.mark.parametrize(
    ("protocol", "action", "payload", "code"),
    [
        ("ocpp1.6", "StartTransaction", START_16, None),
        (
            "ocpp1.6",
            "StartTransaction",
            {k: v for k, v in START_16.items() if k != "meterStart"},
            "OccurenceConstraintViolation",
        ),
        ("ocpp1.6", "StartTransaction", {**START_16, "meterStart": "1000"}, "TypeConstraintViolation"),
        ("ocpp1.6", "StartTransaction", {**START_16, "idTag": "T" * 21}, "PropertyConstraintViolation"),
        ("ocpp1.6", "StartTransaction", {**START_16, "color": "red"}, "FormationViolation"),
        ("ocpp2.0.1", "Authorize", AUTHORIZE_201, None),
        ("ocpp2.0.1", "Authorize", {}, "OccurrenceConstraintViolation"),
        ("ocpp2.0.1", "Authorize", {"idToken": {"idToken": 42, "type": "ISO14443"}}, "TypeConstraintViolation"),
        (
            "ocpp2.0.1",
            "Authorize",
            {"idToken": {"idToken": "T" * 37, "type": "ISO14443"}},
            "PropertyConstraintViolation",
        ),
        ("ocpp2.0.1", "Authorize", {"idToken": {"idToken": "TAG", "type": "Barcode"}}, "PropertyConstraintViolation"),
        ("ocpp2.0.1", "Authorize", {**AUTHORIZE_201, "color": "red"}, "FormatViolation"),
    ],
    ids=[
        "1.6-valid",
        "1.6-missing",
        "1.6-wrong-type",
        "1.6-too-long",
        "1.6-additional",
        "2.0.1-valid",
        "2.0.1-missing",
        "2.0.1-wrong-type",
        "2.0.1-too-long",
        "2.0.1-not-in-enum",
        "2.0.1-additional",
    ],
)
async def test_schema_violation_gets_the_versions_error_code(
    protocol: Protocol, action: str, payload: dict[str, Any], code: str | None
) -> None:
    reply, frame = await answer_frame(protocol, action, payload)

    if code is None:
        assert reply.kind == "CALLRESULT", frame
    else:
        assert reply.kind == "CALLERROR"
        assert frame[:3] == [MessageType.CALLERROR, f"id-{action}", code]
        assert frame[3], "a CALLERROR says what was wrong"


@pytest.mark.parametrize("protocol", list(ROUTE_TABLES))
async def test_handler_that_raises_gets_internal_error(protocol: Protocol, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(ctx: CallContext, payload: Payload) -> Payload:
        raise RuntimeError("the token store is on fire")

    monkeypatch.setitem(routes(protocol), "Heartbeat", broken)

    reply, frame = await answer_frame(protocol, "Heartbeat", {})

    assert reply.kind == "CALLERROR"
    assert frame[:3] == [MessageType.CALLERROR, "id-Heartbeat", "InternalError"]
    assert "on fire" not in frame[3], "internal details stay in the log"


# --- over a real gateway and processor ------------------------------------------------------------


@pytest.mark.nats
async def test_every_action_over_the_wire(stack: Stack, station: str) -> None:
    for n, protocol in enumerate(ROUTE_TABLES, start=1):
        name = f"{station}-{n}"
        async with websockets.connect(stack.url(name), subprotocols=[Subprotocol(protocol)], compression=None) as ws:
            for action in sorted(ROUTE_TABLES[protocol]):
                unique_id = f"{n}-{action}"
                await ws.send(ocpp_j.call(unique_id, action, request(protocol, action)))
                frame = await receive(ws)
                assert frame[:2] == [MessageType.CALLRESULT, unique_id], (protocol, action, frame)
                assert_valid_response(protocol, action, frame[2])

            if protocol == "ocpp2.1":
                await assert_send_is_stored_unanswered(stack, ws, name)


async def receive(ws: Any) -> list[Any]:
    async with asyncio.timeout(10):
        return msgspec.json.decode(await ws.recv())  # type: ignore[no-any-return]


async def assert_send_is_stored_unanswered(stack: Stack, ws: Any, station: str) -> None:
    payload = request("ocpp2.1", "NotifyPeriodicEventStream")
    await ws.send(msgspec.json.encode([6, "send-1", "NotifyPeriodicEventStream", payload]).decode())
    await ws.send(ocpp_j.call("beat-after-send", "Heartbeat", {}))

    frame = await receive(ws)
    assert frame[:2] == [MessageType.CALLRESULT, "beat-after-send"], "the SEND must not be answered"

    subject = subjects.ocpp_frame(station, "in", "NotifyPeriodicEventStream")

    async def send_stored() -> list[Any]:
        return [m for m in await stored_frames(stack.js, station) if m.subject == subject]

    [stored] = await eventually(send_stored)
    assert stored.headers is not None
    assert stored.headers[subjects.H_TYPE] == "SEND"
    assert msgspec.json.decode(stored.data) == [6, "send-1", "NotifyPeriodicEventStream", payload]
    # the processor handled the SEND before the Heartbeat (one lane per station): nothing went out for it
    answers = subjects.ocpp_frame(station, "out", "NotifyPeriodicEventStream")
    assert not [m for m in await stored_frames(stack.js, station) if m.subject == answers]
