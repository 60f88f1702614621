"""Every CALL a CSMS can send is answered with a response valid against the version's schema, and
the messages that follow it are valid requests; the device state behind the answers holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import msgspec
import pytest

from evbus.sim.answer import ROUTES, answer
from evbus.sim.device import Device
from evbus.sim.effects import Effect, Reschedule, Send, SendStatus, Start
from processors.csms.routing import routes as csms_routes
from schemas import payloads
from schemas.ocpp_j import PROTOCOLS, Protocol
from tests.support_payloads import example

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
LATER = (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def device(protocol: Protocol) -> Device:
    return Device(protocol, "SIM-unit", "SN-unit", [1000.0, 2000.0])


def valid(protocol: Protocol, action: str, payload: Any, kind: payloads.Kind) -> None:
    schema = payloads.schema(protocol, action, kind)
    assert schema is not None, f"{protocol} has no {kind} schema for {action}"
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    errors = [e.message for e in validator.iter_errors(payload)]
    assert not errors, f"{protocol} {action} {kind} {payload}: {errors}"


def ask(d: Device, action: str, payload: dict[str, Any]) -> tuple[list[Any], tuple[Effect, ...]]:
    """The station's answer frame to a CALL, its effects; the answer checked against the schema."""
    frame, effects = answer(d, f"id-{action}", action, payload, NOW)
    decoded = msgspec.json.decode(frame)
    if decoded[0] == 3:
        valid(d.protocol, action, decoded[2], "response")
    for effect in effects:
        if isinstance(effect, Send):
            valid(d.protocol, effect.action, effect.payload, "request")
    return decoded, effects


def result(d: Device, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    frame, _ = ask(d, action, payload)
    assert frame[0] == 3, frame
    return frame[2]  # type: ignore[no-any-return]


def csms_actions(protocol: Protocol) -> set[str]:
    """Every CALL a CSMS sends: the version's actions the CSMS does not itself answer (+ DataTransfer)."""
    own = set(csms_routes(protocol))
    return {a for a in payloads.actions(protocol) if a not in own and not payloads.is_send(protocol, a)} | {
        "DataTransfer"
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_csms_action_has_a_handler(protocol: Protocol) -> None:
    assert set(ROUTES[protocol]) == csms_actions(protocol)


@pytest.mark.parametrize(("protocol", "action"), [(p, a) for p in PROTOCOLS for a in sorted(ROUTES[p])])
def test_minimal_request_gets_a_schema_valid_result(protocol: Protocol, action: str) -> None:
    d = device(protocol)
    request = example(payloads.schema(protocol, action, "request"))  # type: ignore[arg-type]
    frame, _ = ask(d, action, request)
    assert frame[0] == 3, frame
    assert frame[1] == f"id-{action}"


def storing_first(action: str) -> tuple[int, str]:
    """Setters before getters before clearers, so getters meet stored state."""
    if action.startswith(("Set", "Install", "Send", "Reserve", "Publish", "Request")):
        return 0, action
    if action.startswith(("Clear", "Delete", "Cancel", "Unpublish")):
        return 2, action
    return 1, action


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_action_twice_over_a_filled_device(protocol: Protocol) -> None:
    """A second pass meets stored profiles, certificates, messages, tariffs: still valid answers."""
    d = device(protocol)
    for _ in range(2):
        for action in sorted(ROUTES[protocol], key=storing_first):
            frame, _ = ask(d, action, example(payloads.schema(protocol, action, "request")))  # type: ignore[arg-type]
            assert frame[0] == 3, frame


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_and_misdirected_actions(protocol: Protocol) -> None:
    d = device(protocol)
    frame, _ = ask(d, "MakeCoffee", {})
    assert frame[:3] == [4, "id-MakeCoffee", "NotImplemented"]
    frame, _ = ask(d, "Heartbeat", {})  # a station sends Heartbeat, it does not answer one
    assert frame[:3] == [4, "id-Heartbeat", "NotSupported"]


@pytest.mark.parametrize(
    ("protocol", "payload", "code"),
    [
        ("ocpp1.6", {"key": ["HeartbeatInterval"], "extra": 1}, "FormationViolation"),
        ("ocpp1.6", {"key": "HeartbeatInterval"}, "TypeConstraintViolation"),
        ("ocpp2.0.1", {"requestId": 1, "reportBase": "FullInventory", "extra": 1}, "FormatViolation"),
        ("ocpp2.0.1", {"reportBase": "FullInventory"}, "OccurrenceConstraintViolation"),
        ("ocpp2.1", {"requestId": 1, "reportBase": "Everything"}, "PropertyConstraintViolation"),
    ],
)
def test_schema_invalid_calls_get_the_versions_error_code(
    protocol: Protocol, payload: dict[str, Any], code: str
) -> None:
    action = "GetConfiguration" if protocol == "ocpp1.6" else "GetBaseReport"
    frame, effects = ask(device(protocol), action, payload)
    assert frame[0] == 4
    assert frame[2] == code
    assert effects == ()


# --- 1.6 -----------------------------------------------------------------------------------------


def test_16_configuration_keys() -> None:
    d = device("ocpp1.6")
    got = result(d, "GetConfiguration", {"key": ["HeartbeatInterval", "NumberOfConnectors", "Nope"]})
    assert got["configurationKey"] == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
    ]
    assert got["unknownKey"] == ["Nope"]
    assert len(result(d, "GetConfiguration", {})["configurationKey"]) > 20

    frame, effects = ask(d, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "42"})
    assert frame[2] == {"status": "Accepted"}
    assert effects == (Reschedule(),)
    assert d.heartbeat_interval == 42
    assert result(d, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "soon"})["status"] == "Rejected"
    assert result(d, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"})["status"] == "Rejected"
    assert result(d, "ChangeConfiguration", {"key": "Nope", "value": "1"})["status"] == "NotSupported"
    assert result(d, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "7"})["status"] == "Accepted"
    assert d.meter_period == 7


def test_16_remote_start_reserves_the_connector() -> None:
    d = device("ocpp1.6")
    frame, effects = ask(d, "RemoteStartTransaction", {"idTag": "TAG", "connectorId": 1})
    assert frame[2] == {"status": "Accepted"}
    assert effects == (Start(1),)
    assert d.connectors[1].start_request is not None
    assert result(d, "RemoteStartTransaction", {"idTag": "TAG", "connectorId": 1})["status"] == "Rejected"
    assert result(d, "RemoteStartTransaction", {"idTag": "TAG"})["status"] == "Accepted"  # connector 2
    assert result(d, "RemoteStartTransaction", {"idTag": "TAG"})["status"] == "Rejected"  # none left
    assert result(d, "RemoteStopTransaction", {"transactionId": 99})["status"] == "Rejected"


def test_16_availability_reservation_and_local_list() -> None:
    d = device("ocpp1.6")
    frame, effects = ask(d, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
    assert frame[2] == {"status": "Accepted"}
    assert effects == (SendStatus(2),)
    assert d.connectors[2].status == "Unavailable"
    reserve = {"connectorId": 2, "expiryDate": LATER, "idTag": "T", "reservationId": 5}
    assert result(d, "ReserveNow", reserve)["status"] == "Unavailable"
    assert result(d, "ReserveNow", reserve | {"connectorId": 1})["status"] == "Accepted"
    assert d.connectors[1].status == "Reserved"
    assert result(d, "ReserveNow", reserve | {"connectorId": 1, "reservationId": 6})["status"] == "Occupied"
    assert result(d, "CancelReservation", {"reservationId": 5})["status"] == "Accepted"
    assert result(d, "CancelReservation", {"reservationId": 5})["status"] == "Rejected"

    entry = {"idTag": "T1", "idTagInfo": {"status": "Accepted"}}
    assert result(d, "SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [entry]}) == {
        "status": "Accepted"
    }
    assert result(d, "GetLocalListVersion", {}) == {"listVersion": 3}
    assert result(d, "SendLocalList", {"listVersion": 3, "updateType": "Differential"})["status"] == "VersionMismatch"
    assert result(d, "SendLocalList", {"listVersion": 4, "updateType": "Differential"})["status"] == "Accepted"
    assert result(d, "GetLocalListVersion", {}) == {"listVersion": 4}


def test_16_charging_profiles_shape_the_composite_schedule() -> None:
    d = device("ocpp1.6")
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]},
    }
    assert result(d, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})["status"] == "Accepted"
    schedule = result(d, "GetCompositeSchedule", {"connectorId": 1, "duration": 3600})
    assert schedule["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    tx_profile = profile | {"chargingProfilePurpose": "TxProfile"}
    assert result(d, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": tx_profile})["status"] == "Rejected"
    assert result(d, "ClearChargingProfile", {"id": 1})["status"] == "Accepted"
    assert result(d, "ClearChargingProfile", {"id": 1})["status"] == "Unknown"


def test_16_firmware_update_is_followed_by_its_status_notifications() -> None:
    d = device("ocpp1.6")
    frame, effects = ask(d, "UpdateFirmware", {"location": "http://fw", "retrieveDate": "2026-11-21T09:00:00Z"})
    assert frame[2] == {}
    assert [e.payload["status"] for e in effects if isinstance(e, Send)] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]


# --- 2.0.1 / 2.1 --------------------------------------------------------------------------------


def var(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": variable}} | extra


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.1"])
def test_2x_device_model(protocol: Protocol) -> None:
    d = device(protocol)
    got = result(
        d,
        "GetVariables",
        {
            "getVariableData": [
                var("OCPPCommCtrlr", "HeartbeatInterval"),
                var("OCPPCommCtrlr", "Nope"),
                var("NoSuchCtrlr", "HeartbeatInterval"),
                var("SecurityCtrlr", "BasicAuthPassword"),
                var("OCPPCommCtrlr", "HeartbeatInterval", attributeType="MaxSet"),
            ]
        },
    )["getVariableResult"]
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in got] == [
        ("Accepted", "300"),
        ("UnknownVariable", None),
        ("UnknownComponent", None),
        ("Rejected", None),
        ("NotSupportedAttributeType", None),
    ]
    evse = {"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"}}
    assert result(d, "GetVariables", {"getVariableData": [evse]})["getVariableResult"][0]["attributeValue"] == "22000"

    frame, effects = ask(
        d,
        "SetVariables",
        {
            "setVariableData": [
                var("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60"),
                var("ChargingStation", "Model", attributeValue="x"),
                var("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="often"),
            ]
        },
    )
    assert [r["attributeStatus"] for r in frame[2]["setVariableResult"]] == ["Accepted", "Rejected", "Rejected"]
    assert effects == (Reschedule(),)
    assert d.heartbeat_interval == 60


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.1"])
def test_2x_base_report_is_sent_in_parts(protocol: Protocol) -> None:
    d = device(protocol)
    frame, effects = ask(d, "GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"})
    assert frame[2] == {"status": "Accepted"}
    reports = [e.payload for e in effects if isinstance(e, Send)]
    assert len(reports) > 1
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert [r["tbc"] for r in reports] == [True] * (len(reports) - 1) + [False]
    assert sum(len(r["reportData"]) for r in reports) == len(list(d.variables))
    selected = {"requestId": 8, "componentVariable": [{"component": {"name": "OCPPCommCtrlr"}}]}
    _, effects = ask(d, "GetReport", selected)
    assert {r["component"]["name"] for e in effects if isinstance(e, Send) for r in e.payload["reportData"]} == {
        "OCPPCommCtrlr"
    }
    assert result(d, "GetReport", {"requestId": 9, "componentCriteria": ["Problem"]}) == {"status": "EmptyResultSet"}


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.1"])
def test_2x_transactions_and_triggers(protocol: Protocol) -> None:
    d = device(protocol)
    start = {"idToken": {"idToken": "TOK", "type": "ISO14443"}, "remoteStartId": 3, "evseId": 2}
    frame, effects = ask(d, "RequestStartTransaction", start)
    assert frame[2] == {"status": "Accepted"}
    assert effects == (Start(2),)
    assert result(d, "RequestStartTransaction", start)["status"] == "Rejected"
    assert result(d, "RequestStopTransaction", {"transactionId": "nope"})["status"] == "Rejected"
    assert result(d, "TriggerMessage", {"requestedMessage": "TransactionEvent"})["status"] == "Rejected"
    assert result(d, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1}}) == {
        "status": "Accepted"
    }
    assert result(d, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 9}})["status"] == (
        "Rejected"
    )
    assert result(d, "UnlockConnector", {"evseId": 1, "connectorId": 1}) == {"status": "Unlocked"}
    assert result(d, "UnlockConnector", {"evseId": 5, "connectorId": 1}) == {"status": "UnknownConnector"}


@pytest.mark.parametrize("protocol", ["ocpp2.0.1", "ocpp2.1"])
def test_2x_getters_report_what_was_set(protocol: Protocol) -> None:
    d = device(protocol)
    profile = example(payloads.schema(protocol, "SetChargingProfile", "request"))  # type: ignore[arg-type]
    assert result(d, "SetChargingProfile", profile) == {"status": "Accepted"}
    _, effects = ask(d, "GetChargingProfiles", {"requestId": 1, "chargingProfile": {}})
    (report,) = [e for e in effects if isinstance(e, Send)]
    assert report.action == "ReportChargingProfiles"
    assert report.payload["chargingProfile"] == [profile["chargingProfile"]]

    message = {"id": 4, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "Hello"}}
    assert result(d, "SetDisplayMessage", {"message": message}) == {"status": "Accepted"}
    _, effects = ask(d, "GetDisplayMessages", {"requestId": 2})
    assert [e.payload["messageInfo"] for e in effects if isinstance(e, Send)] == [[message]]

    monitor = var("OCPPCommCtrlr", "HeartbeatInterval", value=600.0, type="UpperThreshold", severity=5)
    assert result(d, "SetVariableMonitoring", {"setMonitoringData": [monitor]})["setMonitoringResult"][0]["status"] == (
        "Accepted"
    )
    _, effects = ask(d, "GetMonitoringReport", {"requestId": 3})
    assert [e.action for e in effects if isinstance(e, Send)] == ["NotifyMonitoringReport"]

    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    install = {"certificateType": "CSMSRootCertificate", "certificate": certificate}
    assert result(d, "InstallCertificate", install) == {"status": "Accepted"}
    chain = result(d, "GetInstalledCertificateIds", {})["certificateHashDataChain"]
    assert result(d, "DeleteCertificate", {"certificateHashData": chain[0]["certificateHashData"]}) == {
        "status": "Accepted"
    }
    assert result(d, "GetInstalledCertificateIds", {}) == {"status": "NotFound"}


def test_21_tariffs() -> None:
    d = device("ocpp2.1")
    tariff = {"tariffId": "T1", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.39}]}}
    assert result(d, "SetDefaultTariff", {"evseId": 1, "tariff": tariff}) == {"status": "Accepted"}
    assert result(d, "GetTariffs", {"evseId": 1})["tariffAssignments"] == [
        {"tariffId": "T1", "tariffKind": "DefaultTariff", "evseIds": [1]}
    ]
    assert result(d, "ClearTariffs", {}) == {"clearTariffsResult": [{"status": "Accepted", "tariffId": "T1"}]}
    assert result(d, "GetTariffs", {"evseId": 1}) == {"status": "NoTariff"}
