"""Routes of a station's OCPP security: its security profile and Basic auth password, kept in KV
``registry`` (the gateway enforces them at the handshake, gateways/ocpp/handshake.py).

Only the argon2 hash of a password is stored; no answer ever shows it. A generated password is
shown once, in the answer to the PUT that made it. ``push: true`` first sets the password on the
connected station through the command path (1.6 ``ChangeConfiguration AuthorizationKey``, 2.x
``SetVariables SecurityCtrlr.BasicAuthPassword``) and stores the hash only once the station
accepted it, so a station is never locked out by a password it refused.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Callable
from typing import Annotated, Any, Final
from urllib.parse import quote

import msgspec
from litestar import Request, delete, get, put
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from api.services import Services, Svc, remote_address
from evbus.passwords import hash_password
from gateways.ocpp.handshake import Refusal, station_id_from_path
from processors.commands.client import NoProcessor
from schemas import subjects
from schemas.commands import CommandReply
from schemas.records import SecurityProfile, StationRecord, encode

PASSWORD_MIN: Final = 16  # OCPP 2.0.1 BasicAuthPassword (minLimit), 1.6 security whitepaper
PASSWORD_MAX: Final = 40  # OCPP 2.0.1 BasicAuthPassword (maxLimit)
V16_KEY_MAX: Final = 20  # bytes: 1.6 AuthorizationKey is 16-20 bytes, sent as 32-40 hex digits
GENERATED_LENGTH: Final = 20  # letters and digits, ~119 bits: fits 1.6 and 2.x alike
_ALPHABET: Final = string.ascii_letters + string.digits
ACCEPTED: Final = frozenset({"Accepted", "RebootRequired"})  # RebootRequired: taken, used after the reboot
PUSH_COMMAND: Final = "station-password"
WRITE_ATTEMPTS: Final = 5

log = logging.getLogger(__name__)

_record = msgspec.json.Decoder(StationRecord).decode
_answer = msgspec.json.Decoder(dict[str, Any]).decode


def password_problem(password: str) -> str | None:
    """What makes ``password`` unfit as a station's Basic auth password, or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"a station password has {PASSWORD_MIN} to {PASSWORD_MAX} characters (OCPP BasicAuthPassword)"
    if not all("!" <= ch <= "~" for ch in password):
        return "a station password is printable ASCII without spaces"
    return None


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))


# --- bodies -----------------------------------------------------------------------------------


class StationSecurity(msgspec.Struct, kw_only=True, rename="camel"):
    identity: str
    security_profile: Annotated[
        int, msgspec.Meta(description="the profile the gateway enforces: stored, or the default (1 with a password)")
    ]
    has_password: bool


class SecurityChange(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    security_profile: Annotated[
        SecurityProfile | None,
        msgspec.Meta(
            description="0 open, 1 Basic auth, 2 TLS + Basic auth, 3 TLS client certificate; omitted: unchanged"
        ),
    ] = None
    password: Annotated[
        str | None, msgspec.Meta(description="16-40 printable ASCII characters (at most 20 to push to OCPP 1.6)")
    ] = None
    generate: Annotated[bool, msgspec.Meta(description="generate a password (20 letters and digits), shown once")] = (
        False
    )
    push: Annotated[
        bool, msgspec.Meta(description="set the new password on the connected station first; stored once it accepts")
    ] = False


class Pushed(msgspec.Struct, kw_only=True, rename="camel"):
    command_id: str
    action: str
    status: str


class SecurityChanged(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    identity: str
    security_profile: int
    has_password: bool
    password: str | None = None  # only a generated one, only in this answer
    pushed: Pushed | None = None


# --- helpers ----------------------------------------------------------------------------------


def _checked_identity(identity: str) -> str:
    """The id as the gateway reads it from a handshake path (DESIGN §2), or a 422."""
    found = station_id_from_path("/ocpp/" + quote(identity, safe=""))
    if isinstance(found, Refusal):
        raise HTTPException(status_code=422, detail=f"invalid station id: {found.reason}")
    return found


async def _registry(svc: Services) -> KeyValue:
    return await svc.nc.jetstream().key_value(subjects.BUCKET_REGISTRY)


async def _read(kv: KeyValue, identity: str) -> tuple[StationRecord | None, int]:
    """The station's record and its revision (0: none yet)."""
    try:
        entry = await kv.get(subjects.kv_key(identity))
    except KeyNotFoundError:
        return None, 0
    if not entry.value:
        return None, entry.revision or 0
    return _record(entry.value), entry.revision or 0


async def _store(
    kv: KeyValue, identity: str, change: Callable[[StationRecord], StationRecord], seen: tuple[StationRecord, int]
) -> StationRecord:
    """Write ``change`` of the record, over the revision it was made from: a change someone made
    meanwhile (API, CLI) is read again and kept, with this one made to it."""
    current, revision = seen
    for _ in range(WRITE_ATTEMPTS):
        record = change(current)
        try:
            if revision:
                await kv.update(subjects.kv_key(identity), encode(record), last=revision)
            else:
                await kv.create(subjects.kv_key(identity), encode(record))
        except KeyWrongLastSequenceError:
            found, revision = await _read(kv, identity)
            current = found or StationRecord()
            continue
        return record
    raise HTTPException(status_code=503, detail=f"station {identity!r} changes too often to store this; try again")


def _view(identity: str, record: StationRecord | None) -> StationSecurity:
    record = record or StationRecord()
    return StationSecurity(identity=identity, security_profile=record.profile, has_password=bool(record.password_hash))


def push_call(protocol: str, password: str) -> tuple[str, dict[str, Any], list[str]]:
    """The CALL that sets ``password`` on a station of ``protocol``, and where the secret sits in
    it (the stream keeps the CALL with ``***`` there). OCPP 1.6 (security whitepaper):
    ``AuthorizationKey`` holds the password's bytes as hex digits; the station sends the password
    itself in its Basic credentials. OCPP 2.x: ``SecurityCtrlr.BasicAuthPassword``, as it is."""
    if protocol == "ocpp1.6":
        return "ChangeConfiguration", {"key": "AuthorizationKey", "value": password.encode().hex()}, ["/value"]
    variable = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
    payload = {"setVariableData": [{**variable, "attributeValue": password}]}
    return "SetVariables", payload, ["/setVariableData/0/attributeValue"]


def answer_status(action: str, response: bytes) -> str:
    """The station's status in its answer: 1.6 ``status``, 2.x the variable's ``attributeStatus``."""
    try:
        answer = _answer(response)
    except msgspec.DecodeError:
        return "Unreadable"
    if action == "SetVariables":
        results = answer.get("setVariableResult")
        first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
        status = first.get("attributeStatus")
    else:
        status = answer.get("status")
    return status if isinstance(status, str) else "Unreadable"


async def _push(
    svc: Services, request: Request[Any, Any, Any], identity: str, password: str, generated: bool
) -> Pushed:
    """Set the password on the connected station; raise unless it accepted."""
    if svc.commands is None:
        raise HTTPException(status_code=503, detail="commands are not available in this API process")
    presence = await svc.presence(identity)
    if presence is None:
        raise HTTPException(
            status_code=409, detail=f"station {identity!r} is not connected; nothing was stored (push needs it online)"
        )
    if presence.protocol == "ocpp1.6" and len(password.encode()) > V16_KEY_MAX:
        raise HTTPException(
            status_code=422, detail=f"an OCPP 1.6 AuthorizationKey holds {PASSWORD_MIN} to {V16_KEY_MAX} characters"
        )
    action, payload, secrets = push_call(presence.protocol, password)
    try:
        reply = await svc.commands.send(
            identity,
            action,
            msgspec.json.encode(payload),
            command=PUSH_COMMAND,
            requested_by=svc.requested_by(request),
            secrets=secrets,
        )
    except NoProcessor as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if reply.outcome == "answered":
        status = answer_status(action, bytes(reply.response))
        if status in ACCEPTED:
            return Pushed(command_id=reply.command_id, action=action, status=status)
        raise HTTPException(
            status_code=409,
            detail=f"the station answered {status}: the new password was not stored",
            extra=_failure(reply, status),
        )
    raise _push_failed(reply, password if generated else None)


def _failure(reply: CommandReply, status: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"commandId": reply.command_id, "action": reply.action, "outcome": reply.outcome}
    if status is not None:
        found["status"] = status
    for key, value in (
        ("errorCode", reply.error_code),
        ("errorDescription", reply.error_description),
        ("detail", reply.detail),
    ):
        if value:
            found[key] = value
    return found


def _push_failed(reply: CommandReply, generated: str | None) -> HTTPException:
    extra = _failure(reply)
    if reply.outcome == "error":
        return HTTPException(
            status_code=502,
            detail=f"the station answered CALLERROR {reply.error_code}; nothing was stored",
            extra=extra,
        )
    if reply.outcome == "timeout":
        # the station may have taken the password: the generated one is shown so it can be sent again
        if generated is not None:
            extra["password"] = generated
        return HTTPException(
            status_code=504,
            detail="the station did not answer in time; nothing was stored. PUT the same password again",
            extra=extra,
        )
    if reply.outcome == "offline":
        return HTTPException(status_code=409, detail="the station is not connected; nothing was stored", extra=extra)
    status = 503 if reply.outcome == "unavailable" else 422
    return HTTPException(status_code=status, detail=f"the password was not pushed ({reply.outcome})", extra=extra)


# --- routes -----------------------------------------------------------------------------------


@get("/api/stations/{identity:str}/security", operation_id="getStationSecurity", tags=["stations"])
async def get_security(svc: Svc, identity: FromPath[str]) -> StationSecurity:
    """The station's security profile and whether it has a password (never the password or its hash)."""
    identity = _checked_identity(identity)
    record, _ = await _read(await _registry(svc), identity)
    if record is None:
        raise NotFoundException(f"station {identity!r} is not registered")
    return _view(identity, record)


@put("/api/stations/{identity:str}/security", operation_id="putStationSecurity", tags=["stations"], status_code=200)
async def put_security(
    svc: Svc, request: Request[Any, Any, Any], identity: FromPath[str], data: JSONBody[SecurityChange]
) -> SecurityChanged:
    """Set the station's security profile and/or password (``generate: true``: a new random one,
    shown in this answer only). Registers the station if it is not yet. ``push: true``: send the
    new password to the connected station first and store it only once the station accepted it
    (409 refused or offline, 502 CALLERROR, 504 no answer: nothing is stored then). Profiles 1 and
    2 need a password; profiles 2 and 3 need the gateway's ``wss://`` listener."""
    identity = _checked_identity(identity)
    if data.password is not None and data.generate:
        raise HTTPException(status_code=422, detail="give password or generate: true, not both")
    if data.password is not None and (problem := password_problem(data.password)):
        raise HTTPException(status_code=422, detail=problem)
    password = generate_password() if data.generate else data.password
    if data.push and password is None:
        raise HTTPException(status_code=422, detail="push needs a new password (password or generate: true)")
    new_hash = await asyncio.to_thread(hash_password, password) if password else None

    def change(current: StationRecord) -> StationRecord:
        profile = data.security_profile if data.security_profile is not None else current.security_profile
        return msgspec.structs.replace(
            current, security_profile=profile, password_hash=new_hash or current.password_hash
        )

    kv = await _registry(svc)
    found, revision = await _read(kv, identity)
    current = found or StationRecord()
    planned = change(current)
    if planned.profile in (1, 2) and not planned.password_hash:
        raise HTTPException(status_code=422, detail=f"security profile {planned.profile} needs a password")
    pushed = await _push(svc, request, identity, password, data.generate) if data.push and password else None
    record = await _store(kv, identity, change, (current, revision))
    what = "password set" if password else "password kept" if record.password_hash else "no password"
    await _audit(
        svc, request, f"{identity}: security profile {record.profile}, {what}" + (", pushed" if pushed else "")
    )
    return SecurityChanged(
        identity=identity,
        security_profile=record.profile,
        has_password=bool(record.password_hash),
        password=password if data.generate else None,
        pushed=pushed,
    )


@delete(
    "/api/stations/{identity:str}/security", operation_id="deleteStationSecurity", tags=["stations"], status_code=200
)
async def delete_security(svc: Svc, request: Request[Any, Any, Any], identity: FromPath[str]) -> StationSecurity:
    """Remove the station's password and profile: it is back to the default (open, profile 0) and
    stays registered."""
    identity = _checked_identity(identity)
    kv = await _registry(svc)
    current, revision = await _read(kv, identity)
    if current is None:
        raise NotFoundException(f"station {identity!r} is not registered")

    def change(record: StationRecord) -> StationRecord:
        return msgspec.structs.replace(record, security_profile=None, password_hash=None)

    record = await _store(kv, identity, change, (current, revision))
    await _audit(svc, request, f"{identity}: password and security profile removed (profile 0)")
    return _view(identity, record)


async def _audit(svc: Services, request: Request[Any, Any, Any], detail: str) -> None:
    """Record the change as security event ``station_security_changed`` (never the password)."""
    try:
        await svc.security_event(
            "station_security_changed", remote_address(request), f"{detail} by {svc.requested_by(request)}"
        )
    except Exception as exc:  # the change is stored; its audit event is best effort
        log.error("security event for %s not stored: %r", detail, exc)


ROUTES = [get_security, put_security, delete_security]
