"""OCPP-J framing: parse a websocket text frame into a message, build CALLRESULT/CALLERROR frames.

Pure functions, shared by the gateway (which needs type, id and action to route and record a
frame) and the processors (which need the payload). Error codes follow the RPC-framework rules of
each version (OCPP-J 1.6 §4.2.3; OCPP 2.0.1/2.1 Part 4 §4.2.3, §4.4); see docs/adr/0003.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, Final, Literal

import msgspec

Protocol = Literal["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]
PROTOCOLS: Final[tuple[Protocol, ...]] = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")  # newest first

UNREADABLE_ID: Final = "-1"  # 2.0.1/2.1 §4.2.3: the id of a CALLERROR whose CALL had none
MAX_ID_LENGTH: Final = 128  # the spec says 36; real chargers exceed it, we store what we can
ACTION: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_PRINTABLE_ID: Final = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5  # 2.1: a CALLRESULT the receiver could not process
    SEND = 6  # 2.1: a message that gets no answer


SUPPORTED_TYPES: Final[dict[str, frozenset[int]]] = {
    "ocpp1.6": frozenset({2, 3, 4}),
    "ocpp2.0.1": frozenset({2, 3, 4}),
    "ocpp2.1": frozenset({2, 3, 4, 5, 6}),
}


class ErrorCodes(msgspec.Struct, frozen=True):
    """The CALLERROR codes one protocol version uses for each class of bad input."""

    rpc: str  # the frame is not a valid OCPP-J message (not JSON, wrong array shape)
    message_type: str | None  # unknown MessageTypeId; None = ignore the frame (2.1 §4.4)
    format: str  # payload not well-formed: too large, additional properties
    occurrence: str  # required property missing
    type: str  # property of the wrong type
    property: str  # value outside its constraints (enum, length, range)
    not_implemented: str = "NotImplemented"
    not_supported: str = "NotSupported"
    internal: str = "InternalError"
    security: str = "SecurityError"


ERROR_CODES: Final[dict[str, ErrorCodes]] = {
    "ocpp1.6": ErrorCodes(
        rpc="FormationViolation",
        message_type="FormationViolation",  # 1.6 defines no code for this: the PDU is malformed
        format="FormationViolation",
        occurrence="OccurenceConstraintViolation",  # sic: the 1.6 spelling
        type="TypeConstraintViolation",
        property="PropertyConstraintViolation",
    ),
    "ocpp2.0.1": ErrorCodes(
        rpc="RpcFrameworkError",
        message_type="MessageTypeNotSupported",
        format="FormatViolation",
        occurrence="OccurrenceConstraintViolation",
        type="TypeConstraintViolation",
        property="PropertyConstraintViolation",
    ),
    "ocpp2.1": ErrorCodes(
        rpc="RpcFrameworkError",
        message_type=None,
        format="FormatViolation",
        occurrence="OccurrenceConstraintViolation",
        type="TypeConstraintViolation",
        property="PropertyConstraintViolation",
    ),
}


class Call(msgspec.Struct, frozen=True):
    unique_id: str
    action: str
    payload: dict[str, Any]
    type: MessageType = MessageType.CALL  # or SEND (2.1)


class CallResult(msgspec.Struct, frozen=True):
    unique_id: str
    payload: Any  # an object when the station follows the spec; whatever it sent otherwise


class CallError(msgspec.Struct, frozen=True):
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]
    type: MessageType = MessageType.CALLERROR  # or CALLRESULTERROR (2.1)


class Malformed(msgspec.Struct, frozen=True):
    """A frame that is not a valid OCPP-J message of its connection's protocol.

    ``answer`` is the CALLERROR frame the rules call for, or None where they call for silence.
    """

    reason: str
    unique_id: str
    answer: str | None


Message = Call | CallResult | CallError


def parse(text: str | bytes, protocol: Protocol) -> Message | Malformed:
    """Parse one frame. Never raises: anything wrong becomes :class:`Malformed`."""
    codes = ERROR_CODES[protocol]
    try:
        frame = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeError):  # UnicodeEncodeError: a str with lone surrogates
        return _malformed("not valid JSON", UNREADABLE_ID, codes.rpc)
    except RecursionError:  # nesting beyond what this thread's stack allows
        return _malformed("nested too deeply", UNREADABLE_ID, codes.rpc)
    if not isinstance(frame, list) or not frame:
        return _malformed("not a JSON array", UNREADABLE_ID, codes.rpc)
    unique_id = _readable_id(frame)
    kind = frame[0]
    if type(kind) is not int:
        return _malformed("MessageTypeId is not an integer", unique_id, codes.rpc)
    if kind not in SUPPORTED_TYPES[protocol]:
        reason = f"MessageTypeId {kind} is not supported in {protocol}"
        if codes.message_type is None:
            return Malformed(reason=reason, unique_id=unique_id, answer=None)
        return _malformed(reason, unique_id, codes.message_type)
    if unique_id == UNREADABLE_ID:
        return _malformed("MessageId is missing, not a string or not printable", unique_id, codes.rpc)
    if kind in (MessageType.CALL, MessageType.SEND):
        if len(frame) != 4:
            return _malformed(f"a CALL has 4 elements, this one {len(frame)}", unique_id, codes.rpc)
        action, payload = frame[2], frame[3]
        if not isinstance(action, str) or not ACTION.fullmatch(action):
            return _malformed("Action is not an OCPP action name", unique_id, codes.not_implemented)
        if not isinstance(payload, dict):
            return _malformed("Payload is not a JSON object", unique_id, codes.format)
        return Call(unique_id=unique_id, action=action, payload=payload, type=MessageType(kind))
    # Answers are read leniently: they answer a CALL of ours, and pairing them matters more than
    # their shape (a real simulator sends CALLERROR details as a string). The frame is stored verbatim.
    if kind == MessageType.CALLRESULT:
        if len(frame) != 3:
            return _malformed("a CALLRESULT is [3, id, {payload}]", unique_id, None)
        return CallResult(unique_id=unique_id, payload=frame[2])
    # CALLERROR / CALLRESULTERROR: [4, id, code, description, {details}]
    if not 3 <= len(frame) <= 5 or not isinstance(frame[2], str):
        return _malformed("a CALLERROR is [4, id, code, description, {details}]", unique_id, None)
    description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
    details = frame[4] if len(frame) > 4 else {}
    return CallError(
        unique_id=unique_id,
        code=frame[2],
        description=description,
        details=details if isinstance(details, dict) else {"value": details},
        type=MessageType(kind),
    )


def _readable_id(frame: list[Any]) -> str:
    if len(frame) >= 2 and isinstance(frame[1], str) and _PRINTABLE_ID.fullmatch(frame[1]):
        return frame[1]
    return UNREADABLE_ID


def _malformed(reason: str, unique_id: str, code: str | None) -> Malformed:
    # results and errors are never answered (there is nobody waiting for an answer to an answer)
    answer = None if code is None else call_error(unique_id, code, reason)
    return Malformed(reason=reason, unique_id=unique_id, answer=answer)


def too_large(text: str | bytes, limit: int, protocol: Protocol) -> Malformed:
    """The answer to a frame over ``limit`` bytes, with its id if the frame's head shows one."""
    head = text[:200] if isinstance(text, str) else text[:200].decode("utf-8", "replace")
    match = re.match(rf'\s*\[\s*2\s*,\s*"([\x21-\x7e]{{1,{MAX_ID_LENGTH}}}?)"', head)
    unique_id = match.group(1) if match and '"' not in match.group(1) else UNREADABLE_ID
    reason = f"frame of {len(text)} bytes exceeds the limit of {limit}"
    return _malformed(reason, unique_id, ERROR_CODES[protocol].format)


_encode = msgspec.json.Encoder().encode


def call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return _encode([MessageType.CALL, unique_id, action, payload]).decode()


def call_result(unique_id: str, payload: dict[str, Any]) -> str:
    return _encode([MessageType.CALLRESULT, unique_id, payload]).decode()


def call_error(unique_id: str, code: str, description: str = "", details: dict[str, Any] | None = None) -> str:
    return _encode([MessageType.CALLERROR, unique_id, code, description[:255], details or {}]).decode()
