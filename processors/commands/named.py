"""Version-neutral named commands → the OCPP CALL of the station's protocol.

``POST /api/stations/{id}/commands/{command}`` takes one camelCase body per command (DESIGN §7);
:func:`build` decodes it and maps it to the action and payload of ``ocpp1.6``, ``ocpp2.0.1`` or
``ocpp2.1``. Pure apart from the :class:`Context` callbacks (id counters, stored profiles, clock,
upload URL), which are called only once the body decoded and only when the command needs them. The
payload is checked against the official schema later, by the command processor.

One body Struct and one small builder per command, registered in order by :func:`_command`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from schemas.charging import ChargingProfile, Purpose
from schemas.ocpp_j import Protocol

ALL: Final[tuple[Protocol, ...]] = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
V2: Final[tuple[Protocol, ...]] = ("ocpp2.0.1", "ocpp2.1")


class CommandInputError(ValueError):
    """The body does not make a command for this station (HTTP 422)."""

    def __init__(self, message: str, detail: object | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class UnknownCommand(LookupError):
    """No command of that name (HTTP 404)."""


class NotForProtocol(CommandInputError):
    """The command, or one of its members, does not exist in the station's protocol (HTTP 422)."""


@dataclass(frozen=True)
class Context:
    next_reservation_id: Callable[[], Awaitable[int]]
    next_request_id: Callable[[], Awaitable[int]]  # 2.x requestId / remoteStartId
    profile: Callable[[int | str], Awaitable[ChargingProfile | None]]  # by id (int) or description (str)
    now: Callable[[], datetime]
    upload_location: Callable[[], str] | None = None  # evbus's upload URL for this station (api/uploads.py)


@dataclass(frozen=True)
class NamedCall:
    command: str
    action: str
    payload: dict[str, Any]
    reservation_id: int | None = None
    request_id: int | None = None


# --- shared pieces ---------------------------------------------------------------------------


class _Body(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    pass


Payload = dict[str, Any]
_Out = tuple[str, Payload]


@dataclass
class _Draft:
    """The call being built: the station's protocol, and the ids allocated on the way."""

    command: str
    protocol: Protocol
    ctx: Context
    request_id: int | None = None
    reservation_id: int | None = None

    @property
    def v16(self) -> bool:
        return self.protocol == "ocpp1.6"

    def error(self, message: str) -> CommandInputError:
        return CommandInputError(f"{self.command}: {message}")

    def only_v2(self, value: object, member: str) -> None:
        if value is not None and self.v16:
            raise NotForProtocol(f"{self.command}: {member!r} {_needs(V2, self.protocol)}")

    async def new_request_id(self) -> int:
        self.request_id = await self.ctx.next_request_id()
        return self.request_id

    async def new_reservation_id(self) -> int:
        self.reservation_id = await self.ctx.next_reservation_id()
        return self.reservation_id

    async def stored_profile(self, by_id: int | None, by_description: str | None) -> ChargingProfile | None:
        if by_id is not None and by_description is not None:
            raise self.error("give chargingProfileId or chargingProfile, not both")
        key = by_id if by_id is not None else by_description
        if key is None:
            return None
        found = await self.ctx.profile(key)
        if found is None:
            raise self.error(f"no stored charging profile {key!r}")
        return found


def _needs(protocols: tuple[Protocol, ...], protocol: Protocol) -> str:
    versions = " or ".join(p.removeprefix("ocpp") for p in protocols)
    return f"needs OCPP {versions}; the station speaks {protocol}"


def _compact(members: Payload) -> Payload:
    """The members that are present: OCPP optional members are omitted, never null."""
    return {k: v for k, v in members.items() if v is not None}


def _id_token(token: str | None, kind: str) -> Payload | None:
    return None if token is None else {"idToken": token, "type": kind}


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_V16_PURPOSE: Final = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}
_V2_PURPOSE: Final = {"ChargePointMaxProfile": "ChargingStationMaxProfile"}


def _purpose(purpose: str | None, protocol: Protocol) -> str | None:
    if purpose is None:
        return None
    return (_V16_PURPOSE if protocol == "ocpp1.6" else _V2_PURPOSE).get(purpose, purpose)


def profile_payload(profile: ChargingProfile, protocol: Protocol) -> Payload:
    """A stored profile as 1.6 ``csChargingProfiles`` or as a 2.x ``ChargingProfileType``."""
    if profile.id is None:
        raise CommandInputError("a charging profile sent to a station needs an 'id'")
    schedule: Payload = msgspec.to_builtins(profile.charging_schedule)
    common = _compact(
        {
            "stackLevel": profile.stack_level,
            "chargingProfilePurpose": _purpose(profile.charging_profile_purpose, protocol),
            "chargingProfileKind": profile.charging_profile_kind,
            "recurrencyKind": profile.recurrency_kind,
            "validFrom": profile.valid_from,
            "validTo": profile.valid_to,
        }
    )
    if protocol == "ocpp1.6":
        return {"chargingProfileId": profile.id, **common, "chargingSchedule": schedule}
    return {"id": profile.id, **common, "chargingSchedule": [{"id": profile.id, **schedule}]}


def _component_variable(key: str, draft: _Draft) -> Payload:
    """A 1.6-style configuration key as 2.x ``Component.Variable`` (or ``Component/Variable``)."""
    component, sep, variable = key.partition("/" if "/" in key else ".")
    if not (sep and component and variable):
        raise draft.error(f"OCPP 2.x keys are 'Component.Variable' (e.g. 'OCPPCommCtrlr.HeartbeatInterval'): {key!r}")
    return {"component": {"name": component}, "variable": {"name": variable}}


# --- the registry ----------------------------------------------------------------------------

B = TypeVar("B", bound=_Body)
_Builder = Callable[[B, _Draft], Awaitable[_Out]]


@dataclass(frozen=True)
class _Command:
    decoder: msgspec.json.Decoder[Any]
    build: Callable[[Any, _Draft], Awaitable[_Out]]
    protocols: tuple[Protocol, ...]


_REGISTRY: dict[str, _Command] = {}


def _command(name: str, body: type[B], protocols: tuple[Protocol, ...] = ALL) -> Callable[[_Builder[B]], _Builder[B]]:
    def register(build: _Builder[B]) -> _Builder[B]:
        _REGISTRY[name] = _Command(msgspec.json.Decoder(body), build, protocols)
        return build

    return register


# --- commands of every version ---------------------------------------------------------------


class Reset(_Body):
    type: Literal["hard", "soft"]
    evse_id: int | None = None


@_command("reset", Reset)
async def _reset(b: Reset, d: _Draft) -> _Out:
    d.only_v2(b.evse_id, "evseId")
    if d.v16:
        return "Reset", {"type": b.type.capitalize()}
    return "Reset", _compact({"type": "Immediate" if b.type == "hard" else "OnIdle", "evseId": b.evse_id})


class RemoteStart(_Body):
    id_tag: str
    connector_id: int | None = None
    charging_profile_id: int | None = None
    charging_profile: str | None = None  # a stored profile's description
    token_type: str | None = None  # 2.x IdTokenEnumType; 1.6 has no token types


@_command("remote-start", RemoteStart)
async def _remote_start(b: RemoteStart, d: _Draft) -> _Out:
    stored = await d.stored_profile(b.charging_profile_id, b.charging_profile)
    if stored is not None and stored.charging_profile_purpose != "TxProfile":
        raise d.error(f"a remote start takes a TxProfile, not a {stored.charging_profile_purpose}")
    profile = None if stored is None else profile_payload(stored, d.protocol)
    if d.v16:
        return "RemoteStartTransaction", _compact(
            {"idTag": b.id_tag, "connectorId": b.connector_id, "chargingProfile": profile}
        )
    start = {"idToken": _id_token(b.id_tag, b.token_type or "Central"), "remoteStartId": await d.new_request_id()}
    return "RequestStartTransaction", _compact({**start, "evseId": b.connector_id, "chargingProfile": profile})


class RemoteStop(_Body):
    transaction_id: str | int


@_command("remote-stop", RemoteStop)
async def _remote_stop(b: RemoteStop, d: _Draft) -> _Out:
    if not d.v16:
        return "RequestStopTransaction", {"transactionId": str(b.transaction_id)}
    if isinstance(b.transaction_id, str) and not re.fullmatch(r"-?\d+", b.transaction_id):
        raise d.error(f"OCPP 1.6 transaction ids are integers, not {b.transaction_id!r}")
    return "RemoteStopTransaction", {"transactionId": int(b.transaction_id)}


class UnlockConnector(_Body):
    connector_id: int
    evse_id: int | None = None


@_command("unlock-connector", UnlockConnector)
async def _unlock_connector(b: UnlockConnector, d: _Draft) -> _Out:
    d.only_v2(b.evse_id, "evseId")
    if d.v16:
        return "UnlockConnector", {"connectorId": b.connector_id}
    if b.evse_id is None:  # version-neutral: connector n is EVSE n's (only) connector
        return "UnlockConnector", {"evseId": b.connector_id, "connectorId": 1}
    return "UnlockConnector", {"evseId": b.evse_id, "connectorId": b.connector_id}


class ChangeAvailability(_Body):
    connector_id: int
    type: Literal["operative", "inoperative"]
    evse_id: int | None = None


@_command("change-availability", ChangeAvailability)
async def _change_availability(b: ChangeAvailability, d: _Draft) -> _Out:
    d.only_v2(b.evse_id, "evseId")
    status = b.type.capitalize()
    if d.v16:
        return "ChangeAvailability", {"connectorId": b.connector_id, "type": status}
    evse: Payload | None
    if b.evse_id is not None:  # connectorId 0: the whole EVSE
        evse = _compact({"id": b.evse_id, "connectorId": b.connector_id or None})
    else:  # connectorId 0: the whole station
        evse = {"id": b.connector_id} if b.connector_id else None
    return "ChangeAvailability", _compact({"operationalStatus": status, "evse": evse})


class GetConfiguration(_Body):
    keys: list[str] | None = None


@_command("get-configuration", GetConfiguration)
async def _get_configuration(b: GetConfiguration, d: _Draft) -> _Out:
    if d.v16:
        return "GetConfiguration", _compact({"key": b.keys})
    if b.keys:
        return "GetVariables", {"getVariableData": [_component_variable(key, d) for key in b.keys]}
    return "GetBaseReport", {"requestId": await d.new_request_id(), "reportBase": "ConfigurationInventory"}


class ChangeConfiguration(_Body):
    key: str
    value: str


@_command("change-configuration", ChangeConfiguration)
async def _change_configuration(b: ChangeConfiguration, d: _Draft) -> _Out:
    if d.v16:
        return "ChangeConfiguration", {"key": b.key, "value": b.value}
    return "SetVariables", {"setVariableData": [{**_component_variable(b.key, d), "attributeValue": b.value}]}


class Empty(_Body):
    pass


@_command("clear-cache", Empty)
async def _clear_cache(b: Empty, d: _Draft) -> _Out:
    return "ClearCache", {}


class TriggerMessage(_Body):
    message: str
    connector_id: int | None = None
    evse_id: int | None = None


_V16_TRIGGER: Final = {
    "LogStatusNotification": "DiagnosticsStatusNotification",
    "SignChargingStationCertificate": "SignChargePointCertificate",  # 1.6 security extension
}
_V2_TRIGGER: Final = {v: k for k, v in _V16_TRIGGER.items()}


@_command("trigger-message", TriggerMessage)
async def _trigger_message(b: TriggerMessage, d: _Draft) -> _Out:
    d.only_v2(b.evse_id, "evseId")
    if d.v16:
        message = _V16_TRIGGER.get(b.message, b.message)
        action = "ExtendedTriggerMessage" if message == "SignChargePointCertificate" else "TriggerMessage"
        return action, _compact({"requestedMessage": message, "connectorId": b.connector_id})
    evse_id = b.evse_id if b.evse_id is not None else b.connector_id
    message = _V2_TRIGGER.get(b.message, b.message)
    return "TriggerMessage", _compact(
        {"requestedMessage": message, "evse": None if evse_id is None else {"id": evse_id}}
    )


class DataTransfer(_Body):
    vendor_id: str
    message_id: str | None = None
    data: Any = None


@_command("data-transfer", DataTransfer)
async def _data_transfer(b: DataTransfer, d: _Draft) -> _Out:
    if d.v16 and not isinstance(b.data, str | None):
        raise d.error("OCPP 1.6 DataTransfer data is a string: JSON-encode the value and send that string as 'data'")
    return "DataTransfer", _compact({"vendorId": b.vendor_id, "messageId": b.message_id, "data": b.data})


@_command("get-local-list-version", Empty)
async def _get_local_list_version(b: Empty, d: _Draft) -> _Out:
    return "GetLocalListVersion", {}


class LocalListEntry(_Body):
    id_tag: str
    status: str | None = None  # none: delete the entry (differential update)
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    type: str | None = None  # 2.x IdTokenEnumType, default ISO14443


class SendLocalList(_Body):
    list_version: int
    update_type: Literal["full", "differential"]
    entries: list[LocalListEntry] = []


def _local_list_entry(entry: LocalListEntry, d: _Draft) -> Payload:
    if entry.status is None and (entry.expiry_date or entry.parent_id_tag):
        raise d.error(f"entry {entry.id_tag!r}: expiryDate and parentIdTag need a status")
    if d.v16:
        info = {"status": entry.status, "expiryDate": entry.expiry_date, "parentIdTag": entry.parent_id_tag}
        return _compact({"idTag": entry.id_tag, "idTagInfo": None if entry.status is None else _compact(info)})
    token_info = {
        "status": entry.status,
        "cacheExpiryDateTime": entry.expiry_date,
        "groupIdToken": _id_token(entry.parent_id_tag, "Central"),
    }
    return _compact(
        {
            "idToken": _id_token(entry.id_tag, entry.type or "ISO14443"),
            "idTokenInfo": None if entry.status is None else _compact(token_info),
        }
    )


@_command("send-local-list", SendLocalList)
async def _send_local_list(b: SendLocalList, d: _Draft) -> _Out:
    entries = [_local_list_entry(entry, d) for entry in b.entries] or None  # 2.x: at least one, or none
    version = "listVersion" if d.v16 else "versionNumber"
    update_type = b.update_type.capitalize()
    return "SendLocalList", _compact(
        {version: b.list_version, "updateType": update_type, "localAuthorizationList": entries}
    )


class GetDiagnostics(_Body):
    location: str | None = None  # default: evbus's own upload endpoint (Context.upload_location)
    start_time: str | None = None
    stop_time: str | None = None
    retries: int | None = None
    retry_interval: int | None = None


def _upload_location(location: str | None, d: _Draft) -> str:
    """The URL the station uploads to: the body's, or else evbus's own upload endpoint."""
    if location is not None:
        return location
    if d.ctx.upload_location is None:
        raise d.error("'location' (the URL the station uploads to) is required: no upload endpoint here")
    return d.ctx.upload_location()


@_command("get-diagnostics", GetDiagnostics)
async def _get_diagnostics(b: GetDiagnostics, d: _Draft) -> _Out:
    location = _upload_location(b.location, d)
    if d.v16:
        window = {"startTime": b.start_time, "stopTime": b.stop_time}
        return "GetDiagnostics", _compact(
            {"location": location, **window, "retries": b.retries, "retryInterval": b.retry_interval}
        )
    log = GetLog(
        log_type="DiagnosticsLog",
        location=location,
        oldest_timestamp=b.start_time,
        latest_timestamp=b.stop_time,
        retries=b.retries,
        retry_interval=b.retry_interval,
    )
    return await _get_log(log, d)


class UpdateFirmware(_Body):
    location: str
    retrieve_date: str | None = None  # default: now
    retries: int | None = None
    retry_interval: int | None = None


@_command("update-firmware", UpdateFirmware)
async def _update_firmware(b: UpdateFirmware, d: _Draft) -> _Out:
    retrieve = b.retrieve_date or _utc(d.ctx.now())
    retry = {"retries": b.retries, "retryInterval": b.retry_interval}
    if d.v16:
        return "UpdateFirmware", _compact({"location": b.location, "retrieveDate": retrieve, **retry})
    firmware = {"location": b.location, "retrieveDateTime": retrieve}
    return "UpdateFirmware", _compact({"requestId": await d.new_request_id(), "firmware": firmware, **retry})


class ReserveNow(_Body):
    connector_id: int
    id_tag: str
    expiry_date: str
    parent_id_tag: str | None = None
    token_type: str | None = None  # 2.x IdTokenEnumType, default Central


@_command("reserve-now", ReserveNow)
async def _reserve_now(b: ReserveNow, d: _Draft) -> _Out:
    reservation_id = await d.new_reservation_id()
    if d.v16:
        reservation = {"connectorId": b.connector_id, "expiryDate": b.expiry_date, "idTag": b.id_tag}
        return "ReserveNow", _compact({**reservation, "reservationId": reservation_id, "parentIdTag": b.parent_id_tag})
    reservation = {
        "id": reservation_id,
        "expiryDateTime": b.expiry_date,
        "idToken": _id_token(b.id_tag, b.token_type or "Central"),
        "evseId": b.connector_id or None,  # 0: any EVSE of the station
        "groupIdToken": _id_token(b.parent_id_tag, "Central"),
    }
    return "ReserveNow", _compact(reservation)


class CancelReservation(_Body):
    reservation_id: int


@_command("cancel-reservation", CancelReservation)
async def _cancel_reservation(b: CancelReservation, d: _Draft) -> _Out:
    return "CancelReservation", {"reservationId": b.reservation_id}


class SetChargingProfile(_Body):
    connector_id: int
    charging_profile_id: int | None = None  # a stored profile, by id
    charging_profile: str | None = None  # a stored profile, by description
    profile: ChargingProfile | None = None  # inline; must carry its id


@_command("set-charging-profile", SetChargingProfile)
async def _set_charging_profile(b: SetChargingProfile, d: _Draft) -> _Out:
    given = [x for x in (b.charging_profile_id, b.charging_profile, b.profile) if x is not None]
    if len(given) != 1:
        raise d.error("give exactly one of chargingProfileId, chargingProfile (a description) or profile")
    profile = b.profile or await d.stored_profile(b.charging_profile_id, b.charging_profile)
    assert profile is not None  # exactly one was given, and stored_profile finds it or raises
    if profile.id is None:
        raise d.error("an inline profile needs its 'id'")
    wire = profile_payload(profile, d.protocol)
    if d.v16:
        return "SetChargingProfile", {"connectorId": b.connector_id, "csChargingProfiles": wire}
    return "SetChargingProfile", {"evseId": b.connector_id, "chargingProfile": wire}


class ClearChargingProfile(_Body):
    charging_profile_id: int | None = None
    connector_id: int | None = None
    purpose: Purpose | None = None
    stack_level: int | None = None


@_command("clear-charging-profile", ClearChargingProfile)
async def _clear_charging_profile(b: ClearChargingProfile, d: _Draft) -> _Out:
    purpose = _purpose(b.purpose, d.protocol)
    if d.v16:
        criteria = {"connectorId": b.connector_id, "chargingProfilePurpose": purpose, "stackLevel": b.stack_level}
        return "ClearChargingProfile", _compact({"id": b.charging_profile_id, **criteria})
    criteria = _compact({"evseId": b.connector_id, "chargingProfilePurpose": purpose, "stackLevel": b.stack_level})
    return "ClearChargingProfile", _compact(
        {"chargingProfileId": b.charging_profile_id, "chargingProfileCriteria": criteria or None}
    )


class GetCompositeSchedule(_Body):
    connector_id: int
    duration: int
    charging_rate_unit: Literal["A", "W"] | None = None


@_command("get-composite-schedule", GetCompositeSchedule)
async def _get_composite_schedule(b: GetCompositeSchedule, d: _Draft) -> _Out:
    where = {"connectorId": b.connector_id} if d.v16 else {"evseId": b.connector_id}
    return "GetCompositeSchedule", _compact({**where, "duration": b.duration, "chargingRateUnit": b.charging_rate_unit})


# --- OCPP 2.x messages (some also in the 1.6 security extension) -----------------------------


class EvseRef(_Body):
    id: int
    connector_id: int | None = None


class ComponentRef(_Body):
    name: str
    instance: str | None = None
    evse: EvseRef | None = None


class VariableRef(_Body):
    name: str
    instance: str | None = None


AttributeType = Literal["Actual", "Target", "MinSet", "MaxSet"]


class VariableToGet(_Body):
    component: str | ComponentRef
    variable: str | VariableRef
    attribute_type: AttributeType | None = None


class GetVariables(_Body):
    variables: Annotated[list[VariableToGet], msgspec.Meta(min_length=1)]


def _named(ref: str | ComponentRef | VariableRef) -> Payload:
    if isinstance(ref, str):
        return {"name": ref}
    named: Payload = msgspec.to_builtins(ref)
    return _compact(named)


@_command("get-variables", GetVariables, V2)
async def _get_variables(b: GetVariables, d: _Draft) -> _Out:
    data = [
        _compact({"component": _named(v.component), "variable": _named(v.variable), "attributeType": v.attribute_type})
        for v in b.variables
    ]
    return "GetVariables", {"getVariableData": data}


class VariableToSet(_Body):
    component: str | ComponentRef
    variable: str | VariableRef
    value: str
    attribute_type: AttributeType | None = None


class SetVariables(_Body):
    variables: Annotated[list[VariableToSet], msgspec.Meta(min_length=1)]


@_command("set-variables", SetVariables, V2)
async def _set_variables(b: SetVariables, d: _Draft) -> _Out:
    data = [
        _compact(
            {
                "component": _named(v.component),
                "variable": _named(v.variable),
                "attributeValue": v.value,
                "attributeType": v.attribute_type,
            }
        )
        for v in b.variables
    ]
    return "SetVariables", {"setVariableData": data}


class GetBaseReport(_Body):
    report_base: Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"]


@_command("get-base-report", GetBaseReport, V2)
async def _get_base_report(b: GetBaseReport, d: _Draft) -> _Out:
    return "GetBaseReport", {"requestId": await d.new_request_id(), "reportBase": b.report_base}


class GetLog(_Body):
    log_type: Literal["DiagnosticsLog", "SecurityLog", "DataCollectorLog"]  # DataCollectorLog: 2.1
    location: str | None = None
    oldest_timestamp: str | None = None
    latest_timestamp: str | None = None
    retries: int | None = None
    retry_interval: int | None = None


@_command("get-log", GetLog)
async def _get_log(b: GetLog, d: _Draft) -> _Out:
    span = {"oldestTimestamp": b.oldest_timestamp, "latestTimestamp": b.latest_timestamp}
    log = _compact({"remoteLocation": _upload_location(b.location, d), **span})
    request = {"logType": b.log_type, "requestId": await d.new_request_id(), "log": log}
    return "GetLog", _compact({**request, "retries": b.retries, "retryInterval": b.retry_interval})


class InstallCertificate(_Body):
    certificate_type: str
    certificate: str


@_command("install-certificate", InstallCertificate)
async def _install_certificate(b: InstallCertificate, d: _Draft) -> _Out:
    return "InstallCertificate", {"certificateType": b.certificate_type, "certificate": b.certificate}


class DeleteCertificate(_Body):
    hash_algorithm: Literal["SHA256", "SHA384", "SHA512"]
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str


@_command("delete-certificate", DeleteCertificate)
async def _delete_certificate(b: DeleteCertificate, d: _Draft) -> _Out:
    hash_data: Payload = msgspec.to_builtins(b)
    return "DeleteCertificate", {"certificateHashData": hash_data}


class GetInstalledCertificateIds(_Body):
    certificate_types: list[str] | None = None


@_command("get-installed-certificate-ids", GetInstalledCertificateIds)
async def _get_installed_certificate_ids(b: GetInstalledCertificateIds, d: _Draft) -> _Out:
    if d.v16:
        if b.certificate_types is None or len(b.certificate_types) != 1:
            raise d.error("OCPP 1.6 asks for exactly one certificate type: certificateTypes: [type]")
        return "GetInstalledCertificateIds", {"certificateType": b.certificate_types[0]}
    return "GetInstalledCertificateIds", _compact({"certificateType": b.certificate_types or None})


class IdToken(_Body):
    id_token: str
    type: str


class CustomerInformation(_Body):
    report: bool
    clear: bool
    customer_identifier: str | None = None
    id_token: IdToken | None = None


@_command("customer-information", CustomerInformation, V2)
async def _customer_information(b: CustomerInformation, d: _Draft) -> _Out:
    who = {"customerIdentifier": b.customer_identifier, "idToken": msgspec.to_builtins(b.id_token)}
    request = {"requestId": await d.new_request_id(), "report": b.report, "clear": b.clear}
    return "CustomerInformation", _compact({**request, **who})


class SetDisplayMessage(_Body):
    id: int
    priority: str  # AlwaysFront, InFront, NormalCycle
    content: str
    format: str = "UTF8"
    language: str | None = None
    start_date_time: str | None = None
    end_date_time: str | None = None
    transaction_id: str | None = None
    state: str | None = None


@_command("set-display-message", SetDisplayMessage, V2)
async def _set_display_message(b: SetDisplayMessage, d: _Draft) -> _Out:
    content = _compact({"format": b.format, "content": b.content, "language": b.language})
    when = {"startDateTime": b.start_date_time, "endDateTime": b.end_date_time}
    message = {"id": b.id, "priority": b.priority, "message": content, **when}
    return "SetDisplayMessage", {"message": _compact({**message, "transactionId": b.transaction_id, "state": b.state})}


# --- the entry points ------------------------------------------------------------------------

COMMANDS: Final[tuple[str, ...]] = tuple(_REGISTRY)


def _spec(command: str) -> _Command:
    spec = _REGISTRY.get(command)
    if spec is None:
        raise UnknownCommand(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    return spec


def protocols_of(command: str) -> tuple[Protocol, ...]:
    return _spec(command).protocols


_ENUM_ERROR: Final = re.compile(r"Invalid enum value (?P<value>.+) - at `\$(?P<path>[^`]*)`")


def _allowed(body: type, path: str) -> tuple[Any, ...] | None:
    """The values a Literal member at ``path`` (``.entries[0].type``) allows, for a readable 422."""
    kind: Any = msgspec.inspect.type_info(body)
    for name in re.findall(r"\.([^.\[]+)", path):
        while isinstance(kind, msgspec.inspect.ListType | msgspec.inspect.UnionType):
            kind = kind.item_type if isinstance(kind, msgspec.inspect.ListType) else _not_none(kind.types)
        if not isinstance(kind, msgspec.inspect.StructType):
            return None
        kind = next((f.type for f in kind.fields if f.encode_name == name), None)
    while isinstance(kind, msgspec.inspect.UnionType):
        kind = _not_none(kind.types)
    return kind.values if isinstance(kind, msgspec.inspect.LiteralType) else None


def _not_none(kinds: tuple[Any, ...]) -> Any:
    return next(k for k in kinds if not isinstance(k, msgspec.inspect.NoneType))


def _decode(command: str, spec: _Command, body: bytes) -> Any:
    try:
        return spec.decoder.decode(body if body.strip() else b"{}")
    except msgspec.ValidationError as e:
        found = _ENUM_ERROR.fullmatch(str(e))
        allowed = found and _allowed(spec.decoder.type, found["path"])
        if found and allowed:
            member = found["path"].lstrip(".")
            message = f"{command}: '{member}' must be one of {', '.join(map(str, allowed))}"
        else:
            message = f"{command}: {e}"
        raise CommandInputError(message, str(e)) from None
    except msgspec.DecodeError as e:
        raise CommandInputError(f"{command}: the body is not JSON ({e})", str(e)) from None


async def build(command: str, body: bytes, protocol: Protocol, ctx: Context) -> NamedCall:
    """Decode ``body`` for ``command`` and map it to the CALL of ``protocol``.

    Raises :class:`UnknownCommand`, :class:`NotForProtocol` or :class:`CommandInputError`.
    """
    spec = _spec(command)
    if protocol not in spec.protocols:
        raise NotForProtocol(f"{command} {_needs(spec.protocols, protocol)}")
    decoded = _decode(command, spec, body)
    draft = _Draft(command, protocol, ctx)
    action, payload = await spec.build(decoded, draft)
    return NamedCall(command, action, payload, reservation_id=draft.reservation_id, request_id=draft.request_id)
