"""Version-neutral named commands → OCPP CALLs: every mapping valid against the official schemas."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from processors.commands.named import (
    COMMANDS,
    CommandInputError,
    Context,
    NamedCall,
    NotForProtocol,
    UnknownCommand,
    build,
    profile_payload,
    protocols_of,
)
from schemas import payloads
from schemas.charging import ChargingProfile, ChargingSchedule, SchedulePeriod
from schemas.ocpp_j import PROTOCOLS, Protocol

NOW = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
V2: tuple[Protocol, ...] = ("ocpp2.0.1", "ocpp2.1")
SCHEDULE = ChargingSchedule(
    charging_rate_unit="A",
    charging_schedule_period=[SchedulePeriod(start_period=0, limit=16.0), SchedulePeriod(start_period=3600, limit=7.3)],
    duration=7200,
)
TX_PROFILE = ChargingProfile(
    id=7,
    description="night",
    charging_profile_purpose="TxProfile",
    charging_profile_kind="Relative",
    charging_schedule=SCHEDULE,
)
MAX_PROFILE = ChargingProfile(
    id=8,
    description="site limit",
    stack_level=1,
    charging_profile_purpose="ChargingStationMaxProfile",
    charging_profile_kind="Recurring",
    recurrency_kind="Daily",
    valid_from="2026-11-01T00:00:00Z",
    charging_schedule=ChargingSchedule(
        charging_rate_unit="W",
        charging_schedule_period=[SchedulePeriod(start_period=0, limit=11000.0, number_phases=3)],
        start_schedule="2026-11-21T00:00:00Z",
        min_charging_rate=1400.0,
    ),
)


class Fakes:
    """The context's callbacks, counting their calls."""

    def __init__(self) -> None:
        self.reservation_ids = 0
        self.request_ids = 0
        self.profile_lookups: list[int | str] = []
        self.profiles = {p.id: p for p in (TX_PROFILE, MAX_PROFILE)}

    async def next_reservation_id(self) -> int:
        self.reservation_ids += 1
        return 100 + self.reservation_ids

    async def next_request_id(self) -> int:
        self.request_ids += 1
        return 500 + self.request_ids

    async def profile(self, key: int | str) -> ChargingProfile | None:
        self.profile_lookups.append(key)
        return next((p for p in self.profiles.values() if key in (p.id, p.description)), None)

    def context(self) -> Context:
        return Context(self.next_reservation_id, self.next_request_id, self.profile, lambda: NOW)


async def named(
    command: str, body: dict[str, Any] | bytes, protocol: Protocol, fakes: Fakes | None = None
) -> NamedCall:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await build(command, raw, protocol, (fakes or Fakes()).context())


INLINE = {
    "id": 9,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]},
}

# Representative bodies: every one is mapped for every protocol of its command and schema-checked.
BODIES: dict[str, list[dict[str, Any]]] = {
    "reset": [{"type": "hard"}, {"type": "soft"}],
    "remote-start": [
        {"idTag": "TAG1"},
        {"idTag": "TAG1", "connectorId": 1, "chargingProfileId": 7},
        {"idTag": "TAG1", "connectorId": 2, "chargingProfile": "night", "tokenType": "ISO14443"},
    ],
    "remote-stop": [{"transactionId": 42}, {"transactionId": "42"}],
    "unlock-connector": [{"connectorId": 1}],
    "change-availability": [{"connectorId": 0, "type": "inoperative"}, {"connectorId": 2, "type": "operative"}],
    "get-configuration": [{}, {"keys": ["OCPPCommCtrlr.HeartbeatInterval", "AuthCtrlr/LocalPreAuthorize"]}],
    "change-configuration": [{"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "300"}],
    "clear-cache": [{}],
    "trigger-message": [
        {"message": "Heartbeat"},
        {"message": "StatusNotification", "connectorId": 1},
        {"message": "DiagnosticsStatusNotification"},
        {"message": "LogStatusNotification"},
        {"message": "SignChargingStationCertificate"},
    ],
    "data-transfer": [{"vendorId": "com.example"}, {"vendorId": "com.example", "messageId": "m", "data": "x"}],
    "get-local-list-version": [{}],
    "send-local-list": [
        {"listVersion": 1, "updateType": "full", "entries": []},
        {
            "listVersion": 2,
            "updateType": "differential",
            "entries": [
                {"idTag": "A", "status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z", "parentIdTag": "FLEET"},
                {"idTag": "B", "status": "Blocked", "type": "Central"},
                {"idTag": "C"},
            ],
        },
    ],
    "get-diagnostics": [
        {"location": "ftp://logs.example/"},
        {
            "location": "https://logs.example/up",
            "startTime": "2026-11-20T00:00:00Z",
            "stopTime": "2026-11-21T00:00:00Z",
            "retries": 3,
            "retryInterval": 60,
        },
    ],
    "update-firmware": [
        {"location": "https://fw.example/1.2.bin"},
        {"location": "https://fw.example/1.2.bin", "retrieveDate": "2026-11-22T02:00:00Z", "retries": 2},
    ],
    "reserve-now": [
        {"connectorId": 1, "idTag": "TAG1", "expiryDate": "2026-11-21T11:00:00Z"},
        {"connectorId": 0, "idTag": "TAG1", "expiryDate": "2026-11-21T11:00:00Z", "parentIdTag": "FLEET"},
    ],
    "cancel-reservation": [{"reservationId": 101}],
    "set-charging-profile": [
        {"connectorId": 1, "chargingProfileId": 7},
        {"connectorId": 0, "chargingProfile": "site limit"},
        {"connectorId": 1, "profile": INLINE},
    ],
    "clear-charging-profile": [
        {},
        {"chargingProfileId": 7},
        {"connectorId": 0, "purpose": "ChargePointMaxProfile", "stackLevel": 1},
        {"purpose": "ChargingStationMaxProfile"},
    ],
    "get-composite-schedule": [
        {"connectorId": 1, "duration": 3600},
        {"connectorId": 0, "duration": 60, "chargingRateUnit": "W"},
    ],
    "get-variables": [
        {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]},
        {
            "variables": [
                {
                    "component": {"name": "EVSE", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "Power", "instance": "Max"},
                    "attributeType": "MaxSet",
                }
            ]
        },
    ],
    "set-variables": [
        {"variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"}]},
        {
            "variables": [
                {
                    "component": {"name": "TxCtrlr"},
                    "variable": "EVConnectionTimeOut",
                    "value": "60",
                    "attributeType": "Actual",
                }
            ]
        },
    ],
    "get-base-report": [{"reportBase": "FullInventory"}],
    "get-log": [
        {"logType": "SecurityLog", "location": "https://logs.example/up"},
        {
            "logType": "DiagnosticsLog",
            "location": "https://l/",
            "oldestTimestamp": "2026-11-20T00:00:00Z",
            "retries": 1,
        },
    ],
    "install-certificate": [{"certificateType": "ManufacturerRootCertificate", "certificate": "-----BEGIN CERT..."}],
    "delete-certificate": [
        {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "01"}
    ],
    "get-installed-certificate-ids": [{"certificateTypes": ["ManufacturerRootCertificate"]}],
    "customer-information": [
        {"report": True, "clear": False, "customerIdentifier": "cust-1"},
        {"report": False, "clear": True, "idToken": {"idToken": "TAG1", "type": "ISO14443"}},
    ],
    "set-display-message": [
        {"id": 1, "priority": "NormalCycle", "content": "Welcome"},
        {
            "id": 2,
            "priority": "InFront",
            "content": "<b>Hi</b>",
            "format": "HTML",
            "language": "en",
            "startDateTime": "2026-11-21T10:00:00Z",
            "transactionId": "tx-1",
            "state": "Charging",
        },
    ],
}

CASES = [
    pytest.param(command, protocol, body, id=f"{command}-{protocol}-{i}")
    for command in COMMANDS
    for protocol in protocols_of(command)
    for i, body in enumerate(BODIES[command])
]


def test_every_command_has_bodies_and_the_documented_order() -> None:
    documented = (
        "reset remote-start remote-stop unlock-connector change-availability get-configuration change-configuration "
        "clear-cache trigger-message data-transfer get-local-list-version send-local-list get-diagnostics "
        "update-firmware reserve-now cancel-reservation set-charging-profile clear-charging-profile "
        "get-composite-schedule get-variables set-variables get-base-report get-log install-certificate "
        "delete-certificate get-installed-certificate-ids customer-information set-display-message"
    )
    assert tuple(documented.split()) == COMMANDS
    assert set(BODIES) == set(COMMANDS)


@pytest.mark.parametrize(("command", "protocol", "body"), CASES)
async def test_every_mapping_is_valid_for_the_official_schema(
    command: str, protocol: Protocol, body: dict[str, Any]
) -> None:
    call = await named(command, body, protocol)

    assert call.command == command
    assert payloads.validate(protocol, call.action, call.payload) is None, (call.action, call.payload)
    assert None not in call.payload.values()


def test_which_protocols() -> None:
    assert protocols_of("reset") == ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
    assert protocols_of("get-variables") == V2
    assert protocols_of("get-log") == ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")  # the 1.6 security extension has GetLog
    with pytest.raises(UnknownCommand, match="reset, remote-start"):
        protocols_of("self-destruct")


@pytest.mark.parametrize(
    ("protocol", "body", "payload"),
    [
        ("ocpp1.6", {"type": "hard"}, {"type": "Hard"}),
        ("ocpp1.6", {"type": "soft"}, {"type": "Soft"}),
        ("ocpp2.0.1", {"type": "hard"}, {"type": "Immediate"}),
        ("ocpp2.1", {"type": "soft", "evseId": 2}, {"type": "OnIdle", "evseId": 2}),
    ],
)
async def test_reset_per_version(protocol: Protocol, body: dict[str, Any], payload: dict[str, Any]) -> None:
    call = await named("reset", body, protocol)

    assert (call.action, call.payload) == ("Reset", payload)


async def test_an_evse_is_not_a_16_notion() -> None:
    with pytest.raises(NotForProtocol, match=r"'evseId' needs OCPP 2.0.1 or 2.1; the station speaks ocpp1.6"):
        await named("reset", {"type": "hard", "evseId": 1}, "ocpp1.6")


async def test_bad_enum_value_says_what_is_allowed() -> None:
    with pytest.raises(CommandInputError, match=r"^reset: 'type' must be one of hard, soft$"):
        await named("reset", {"type": "medium"}, "ocpp1.6")
    with pytest.raises(CommandInputError, match=r"^send-local-list: 'updateType' must be one of differential, full$"):
        await named("send-local-list", {"listVersion": 1, "updateType": "Full"}, "ocpp1.6")
    body = {"variables": [{"component": "C", "variable": "V", "attributeType": "Min"}]}
    with pytest.raises(
        CommandInputError, match=r"'variables\[0\]\.attributeType' must be one of Actual, MaxSet, MinSet, Target"
    ):
        await named("get-variables", body, "ocpp2.0.1")


async def test_remote_start_with_a_stored_profile_by_id() -> None:
    fakes = Fakes()
    call = await named("remote-start", {"idTag": "TAG1", "connectorId": 1, "chargingProfileId": 7}, "ocpp1.6", fakes)

    assert call.action == "RemoteStartTransaction"
    assert call.payload == {
        "idTag": "TAG1",
        "connectorId": 1,
        "chargingProfile": profile_payload(TX_PROFILE, "ocpp1.6"),
    }
    assert call.payload["chargingProfile"]["chargingProfileId"] == 7
    assert (fakes.profile_lookups, fakes.request_ids, call.request_id) == ([7], 0, None)


async def test_remote_start_with_a_stored_profile_by_description_on_2x() -> None:
    fakes = Fakes()
    call = await named(
        "remote-start", {"idTag": "TAG1", "connectorId": 2, "chargingProfile": "night"}, "ocpp2.0.1", fakes
    )

    assert call.action == "RequestStartTransaction"
    assert call.payload == {
        "idToken": {"idToken": "TAG1", "type": "Central"},
        "remoteStartId": 501,
        "evseId": 2,
        "chargingProfile": profile_payload(TX_PROFILE, "ocpp2.0.1"),
    }
    assert call.request_id == 501
    assert fakes.profile_lookups == ["night"]


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.1"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"idTag": "T", "chargingProfileId": 99}, "no stored charging profile 99"),
        ({"idTag": "T", "chargingProfile": "nope"}, "no stored charging profile 'nope'"),
        ({"idTag": "T", "chargingProfileId": 8}, "takes a TxProfile"),
        ({"idTag": "T", "chargingProfileId": 7, "chargingProfile": "night"}, "not both"),
    ],
)
async def test_remote_start_refuses_a_missing_or_wrong_profile(
    protocol: Protocol, body: dict[str, Any], message: str
) -> None:
    fakes = Fakes()
    with pytest.raises(CommandInputError, match=message):
        await named("remote-start", body, protocol, fakes)
    assert fakes.request_ids == 0  # no remoteStartId spent on a refused command


async def test_remote_stop_per_version() -> None:
    assert (await named("remote-stop", {"transactionId": "42"}, "ocpp1.6")).payload == {"transactionId": 42}
    assert (await named("remote-stop", {"transactionId": 42}, "ocpp2.1")).payload == {"transactionId": "42"}
    with pytest.raises(CommandInputError, match=r"1.6 transaction ids are integers"):
        await named("remote-stop", {"transactionId": "a1b2-c3"}, "ocpp1.6")


@pytest.mark.parametrize(
    ("body", "payload"),
    [
        ({"connectorId": 0, "type": "inoperative"}, {"operationalStatus": "Inoperative"}),
        ({"connectorId": 2, "type": "operative"}, {"operationalStatus": "Operative", "evse": {"id": 2}}),
        (
            {"connectorId": 2, "type": "operative", "evseId": 1},
            {"operationalStatus": "Operative", "evse": {"id": 1, "connectorId": 2}},
        ),
        ({"connectorId": 0, "type": "operative", "evseId": 1}, {"operationalStatus": "Operative", "evse": {"id": 1}}),
    ],
)
async def test_change_availability_on_2x(body: dict[str, Any], payload: dict[str, Any]) -> None:
    call = await named("change-availability", body, "ocpp2.0.1")

    assert (call.action, call.payload) == ("ChangeAvailability", payload)
    assert payloads.validate("ocpp2.0.1", call.action, call.payload) is None


async def test_unlock_connector_on_2x() -> None:
    assert (await named("unlock-connector", {"connectorId": 2}, "ocpp2.1")).payload == {"evseId": 2, "connectorId": 1}
    assert (await named("unlock-connector", {"connectorId": 2, "evseId": 1}, "ocpp2.1")).payload == {
        "evseId": 1,
        "connectorId": 2,
    }


async def test_configuration_keys_become_components_and_variables() -> None:
    call = await named("get-configuration", {"keys": ["OCPPCommCtrlr.HeartbeatInterval"]}, "ocpp2.0.1")
    assert call.payload == {
        "getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]
    }
    call = await named("change-configuration", {"key": "TxCtrlr/EVConnectionTimeOut", "value": "30"}, "ocpp2.1")
    assert call.payload == {
        "setVariableData": [
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"}, "attributeValue": "30"}
        ]
    }
    with pytest.raises(CommandInputError, match=r"'Component.Variable'"):
        await named("change-configuration", {"key": "HeartbeatInterval", "value": "30"}, "ocpp2.0.1")
    assert (await named("get-configuration", {"keys": ["HeartbeatInterval"]}, "ocpp1.6")).payload == {
        "key": ["HeartbeatInterval"]
    }


async def test_get_configuration_without_keys_on_2x_is_a_base_report() -> None:
    fakes = Fakes()
    call = await named("get-configuration", b"", "ocpp2.0.1", fakes)

    assert (call.action, call.payload) == ("GetBaseReport", {"requestId": 501, "reportBase": "ConfigurationInventory"})
    assert (call.request_id, fakes.request_ids) == (501, 1)


@pytest.mark.parametrize(
    ("protocol", "message", "action", "payload"),
    [
        ("ocpp1.6", "LogStatusNotification", "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}),
        ("ocpp2.0.1", "DiagnosticsStatusNotification", "TriggerMessage", {"requestedMessage": "LogStatusNotification"}),
        (
            "ocpp1.6",
            "SignChargingStationCertificate",
            "ExtendedTriggerMessage",
            {"requestedMessage": "SignChargePointCertificate"},
        ),
        (
            "ocpp2.1",
            "SignChargePointCertificate",
            "TriggerMessage",
            {"requestedMessage": "SignChargingStationCertificate"},
        ),
        ("ocpp2.1", "TransactionEvent", "TriggerMessage", {"requestedMessage": "TransactionEvent"}),
    ],
)
async def test_trigger_message_names_are_translated(
    protocol: Protocol, message: str, action: str, payload: dict[str, Any]
) -> None:
    call = await named("trigger-message", {"message": message}, protocol)

    assert (call.action, call.payload) == (action, payload)


async def test_trigger_message_evse_on_2x() -> None:
    call = await named("trigger-message", {"message": "StatusNotification", "connectorId": 2}, "ocpp2.0.1")

    assert call.payload == {"requestedMessage": "StatusNotification", "evse": {"id": 2}}


async def test_data_transfer_data_on_16_is_a_string() -> None:
    with pytest.raises(CommandInputError, match="JSON-encode"):
        await named("data-transfer", {"vendorId": "v", "data": {"a": 1}}, "ocpp1.6")
    call = await named("data-transfer", {"vendorId": "v", "data": {"a": [1, 2]}}, "ocpp2.1")
    assert call.payload == {"vendorId": "v", "data": {"a": [1, 2]}}
    assert payloads.validate("ocpp2.1", "DataTransfer", call.payload) is None


async def test_send_local_list_per_version() -> None:
    body = {
        "listVersion": 3,
        "updateType": "differential",
        "entries": [{"idTag": "A", "status": "Accepted", "parentIdTag": "F"}, {"idTag": "B"}],
    }
    assert (await named("send-local-list", body, "ocpp1.6")).payload == {
        "listVersion": 3,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "A", "idTagInfo": {"status": "Accepted", "parentIdTag": "F"}},
            {"idTag": "B"},
        ],
    }
    assert (await named("send-local-list", body, "ocpp2.0.1")).payload == {
        "versionNumber": 3,
        "updateType": "Differential",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "A", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted", "groupIdToken": {"idToken": "F", "type": "Central"}},
            },
            {"idToken": {"idToken": "B", "type": "ISO14443"}},
        ],
    }
    with pytest.raises(CommandInputError, match="need a status"):
        await named(
            "send-local-list",
            {"listVersion": 1, "updateType": "full", "entries": [{"idTag": "A", "expiryDate": "x"}]},
            "ocpp1.6",
        )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_diagnostics_need_a_location_without_an_upload_endpoint(protocol: Protocol) -> None:
    fakes = Fakes()
    with pytest.raises(CommandInputError, match="no upload endpoint here"):
        await named("get-diagnostics", {}, protocol, fakes)
    assert fakes.request_ids == 0


@pytest.mark.parametrize(
    ("protocol", "command", "body", "where"),
    [
        ("ocpp1.6", "get-diagnostics", {}, ("location",)),
        ("ocpp2.0.1", "get-diagnostics", {"startTime": "2026-11-20T00:00:00Z"}, ("log", "remoteLocation")),
        ("ocpp2.1", "get-log", {"logType": "SecurityLog"}, ("log", "remoteLocation")),
        ("ocpp1.6", "get-log", {"logType": "DiagnosticsLog"}, ("log", "remoteLocation")),
    ],
)
async def test_without_a_location_the_upload_endpoint_is_used(
    protocol: Protocol, command: str, body: dict[str, Any], where: tuple[str, ...]
) -> None:
    made: list[str] = []

    def upload_location() -> str:
        made.append("https://evbus.example/api/uploads/T/")
        return made[-1]

    context = dataclasses.replace(Fakes().context(), upload_location=upload_location)
    call = await build(command, json.dumps(body).encode(), protocol, context)
    found: Any = call.payload
    for key in where:
        found = found[key]
    assert found == "https://evbus.example/api/uploads/T/"
    assert len(made) == 1


async def test_a_given_location_makes_no_upload_url() -> None:
    def upload_location() -> str:
        raise AssertionError("not asked for")

    context = dataclasses.replace(Fakes().context(), upload_location=upload_location)
    call = await build("get-diagnostics", b'{"location": "ftp://l/"}', "ocpp1.6", context)
    assert call.payload == {"location": "ftp://l/"}


async def test_get_diagnostics_on_2x_is_get_log() -> None:
    body = {"location": "https://l/", "startTime": "2026-11-20T00:00:00Z", "retries": 2}
    call = await named("get-diagnostics", body, "ocpp2.1")

    assert (call.action, call.payload) == (
        "GetLog",
        {
            "logType": "DiagnosticsLog",
            "requestId": 501,
            "log": {"remoteLocation": "https://l/", "oldestTimestamp": "2026-11-20T00:00:00Z"},
            "retries": 2,
        },
    )


async def test_update_firmware_retrieves_now_by_default() -> None:
    v16 = await named("update-firmware", {"location": "https://fw/"}, "ocpp1.6")
    v2 = await named("update-firmware", {"location": "https://fw/"}, "ocpp2.0.1")

    assert v16.payload == {"location": "https://fw/", "retrieveDate": "2026-11-21T10:00:00Z"}
    assert v2.payload == {
        "requestId": 501,
        "firmware": {"location": "https://fw/", "retrieveDateTime": "2026-11-21T10:00:00Z"},
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reserve_now_allocates_a_reservation_id(protocol: Protocol) -> None:
    fakes = Fakes()
    call = await named(
        "reserve-now", {"connectorId": 1, "idTag": "T", "expiryDate": "2026-11-21T11:00:00Z"}, protocol, fakes
    )

    assert call.reservation_id == 101
    assert (fakes.reservation_ids, fakes.request_ids, call.request_id) == (1, 0, None)
    assert call.payload.get("reservationId", call.payload.get("id")) == 101


async def test_reserve_now_on_2x_any_evse() -> None:
    call = await named(
        "reserve-now", {"connectorId": 0, "idTag": "T", "expiryDate": "2026-11-21T11:00:00Z"}, "ocpp2.0.1"
    )

    assert call.payload == {
        "id": 101,
        "expiryDateTime": "2026-11-21T11:00:00Z",
        "idToken": {"idToken": "T", "type": "Central"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"connectorId": 1}, "exactly one"),
        ({"connectorId": 1, "chargingProfileId": 7, "profile": INLINE}, "exactly one"),
        ({"connectorId": 1, "profile": {**INLINE, "id": None}}, "needs its 'id'"),
        ({"connectorId": 1, "chargingProfileId": 1234}, "no stored charging profile 1234"),
    ],
)
async def test_set_charging_profile_refuses(body: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandInputError, match=message):
        await named("set-charging-profile", body, "ocpp2.0.1")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_profile_payload_per_version(protocol: Protocol) -> None:
    wire = profile_payload(MAX_PROFILE, protocol)
    if protocol == "ocpp1.6":
        assert wire["chargingProfileId"] == 8
        assert wire["chargingProfilePurpose"] == "ChargePointMaxProfile"
        assert wire["chargingSchedule"]["chargingRateUnit"] == "W"
        action, payload = "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": wire}
    else:
        assert (wire["id"], wire["chargingSchedule"][0]["id"]) == (8, 8)
        assert wire["chargingProfilePurpose"] == "ChargingStationMaxProfile"
        action, payload = "SetChargingProfile", {"evseId": 0, "chargingProfile": wire}
    assert "description" not in wire
    assert payloads.validate(protocol, action, payload) is None


async def test_clear_charging_profile_criteria_only_when_given() -> None:
    assert (await named("clear-charging-profile", {"chargingProfileId": 3}, "ocpp2.0.1")).payload == {
        "chargingProfileId": 3
    }
    call = await named("clear-charging-profile", {"connectorId": 1, "purpose": "TxProfile"}, "ocpp2.1")
    assert call.payload == {"chargingProfileCriteria": {"evseId": 1, "chargingProfilePurpose": "TxProfile"}}
    call = await named(
        "clear-charging-profile", {"chargingProfileId": 3, "purpose": "ChargingStationMaxProfile"}, "ocpp1.6"
    )
    assert call.payload == {"id": 3, "chargingProfilePurpose": "ChargePointMaxProfile"}


async def test_get_installed_certificate_ids_on_16_takes_one_type() -> None:
    with pytest.raises(CommandInputError, match="exactly one certificate type"):
        await named("get-installed-certificate-ids", {}, "ocpp1.6")
    assert (await named("get-installed-certificate-ids", {}, "ocpp2.0.1")).payload == {}


@pytest.mark.parametrize("command", [c for c in COMMANDS if "ocpp1.6" not in protocols_of(c)])
async def test_2x_only_commands_on_16(command: str) -> None:
    fakes = Fakes()
    with pytest.raises(NotForProtocol, match=f"^{command} needs OCPP 2.0.1 or 2.1; the station speaks ocpp1.6$"):
        await named(command, BODIES[command][0], "ocpp1.6", fakes)
    assert (fakes.request_ids, fakes.reservation_ids) == (0, 0)


async def test_unknown_command() -> None:
    with pytest.raises(UnknownCommand, match="unknown command 'self-destruct'; known: reset, remote-start"):
        await named("self-destruct", {}, "ocpp1.6")


@pytest.mark.parametrize(
    ("command", "body", "message"),
    [
        ("reset", {"type": "hard", "force": True}, "unknown field `force`"),
        ("cancel-reservation", {"reservationId": 1, "id": 2}, "unknown field `id`"),
        ("clear-cache", {"all": True}, "unknown field `all`"),
        ("reset", {}, "missing required field `type`"),
        ("reserve-now", {"connectorId": 1, "idTag": "T"}, "missing required field `expiryDate`"),
        ("cancel-reservation", {"reservationId": "one"}, r"Expected `int`, got `str` - at `\$.reservationId`"),
        ("remote-stop", {"transactionId": None}, "transactionId"),
        ("get-variables", {"variables": []}, "length >= 1"),
        ("reset", b"[]", "Expected `object`"),
        ("reset", b"{", "not JSON"),
    ],
)
async def test_bad_bodies(command: str, body: dict[str, Any] | bytes, message: str) -> None:
    fakes = Fakes()
    with pytest.raises(CommandInputError, match=message) as raised:
        await named(command, body, "ocpp2.0.1", fakes)
    assert str(raised.value).startswith(f"{command}: ")
    assert raised.value.detail is not None
    assert (fakes.request_ids, fakes.reservation_ids, fakes.profile_lookups) == (0, 0, [])


@pytest.mark.parametrize("body", [b"", b"  \n", b"{}"])
async def test_an_empty_body_is_an_empty_object(body: bytes) -> None:
    call = await named("clear-cache", body, "ocpp1.6")

    assert (call.action, call.payload) == ("ClearCache", {})


@pytest.mark.parametrize(
    ("command", "body", "requests", "reservations"),
    [
        ("remote-start", {"idTag": "T"}, 1, 0),
        ("get-configuration", {"keys": ["A.B"]}, 0, 0),
        ("get-configuration", {}, 1, 0),
        ("get-base-report", {"reportBase": "FullInventory"}, 1, 0),
        ("update-firmware", {"location": "https://fw/"}, 1, 0),
        ("customer-information", {"report": True, "clear": False}, 1, 0),
        ("reserve-now", {"connectorId": 1, "idTag": "T", "expiryDate": "2026-11-21T11:00:00Z"}, 0, 1),
        ("reset", {"type": "soft"}, 0, 0),
        ("set-display-message", {"id": 1, "priority": "NormalCycle", "content": "Hi"}, 0, 0),
    ],
)
async def test_ids_are_allocated_only_when_needed(
    command: str, body: dict[str, Any], requests: int, reservations: int
) -> None:
    fakes = Fakes()
    call = await named(command, body, "ocpp2.0.1", fakes)

    assert (fakes.request_ids, fakes.reservation_ids) == (requests, reservations)
    assert (call.request_id is not None, call.reservation_id is not None) == (requests == 1, reservations == 1)


@pytest.mark.parametrize(
    ("command", "body"),
    [
        ("remote-start", {"idTag": "T"}),
        ("get-configuration", {}),
        ("update-firmware", {"location": "https://fw/"}),
    ],
)
async def test_16_needs_no_request_id(command: str, body: dict[str, Any]) -> None:
    fakes = Fakes()
    call = await named(command, body, "ocpp1.6", fakes)

    assert (fakes.request_ids, call.request_id) == (0, None)
