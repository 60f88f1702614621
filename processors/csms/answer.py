"""Answer one station CALL: validate it against its version's schema, route it, never fail silently.

Every CALL gets exactly one frame back: the handler's CALLRESULT, or the CALLERROR the spec
prescribes (schema violation, unknown action, a handler that raised). A SEND (2.1) gets nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple

from processors.csms.context import CallContext, Services
from processors.csms.routing import routes
from schemas import ocpp_j, payloads
from schemas.ocpp_j import Call, MessageType, Protocol

log = logging.getLogger(__name__)


class Answer(NamedTuple):
    kind: Literal["CALLRESULT", "CALLERROR"]
    frame: str


def _error(unique_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> Answer:
    return Answer("CALLERROR", ocpp_j.call_error(unique_id, code, description, details))


async def answer(call: Call, station: str, protocol: Protocol, services: Services) -> Answer | None:
    if call.type == MessageType.SEND:
        return None
    codes = ocpp_j.ERROR_CODES[protocol]
    handler = routes(protocol).get(call.action)
    if handler is None:
        if payloads.is_send(protocol, call.action):
            reason = f"{call.action} is a SEND (MessageTypeId 6), never a CALL"
            return _error(call.unique_id, codes.not_supported, reason)
        if payloads.knows(protocol, call.action):
            reason = f"{call.action} is sent by the CSMS, not by a charging station"
            return _error(call.unique_id, codes.not_supported, reason)
        return _error(call.unique_id, codes.not_implemented, f"unknown action {call.action!r} in {protocol}")
    invalid = payloads.validate(protocol, call.action, call.payload)
    if invalid is not None:
        return _error(call.unique_id, invalid.code, invalid.description, invalid.details)
    ctx = CallContext(
        station=station, protocol=protocol, unique_id=call.unique_id, action=call.action, services=services
    )
    try:
        result = await handler(ctx, call.payload)
    except Exception:
        log.exception("%s: %s %s failed", station, call.action, call.unique_id)
        return _error(call.unique_id, codes.internal, f"evbus could not process {call.action}")
    return Answer("CALLRESULT", ocpp_j.call_result(call.unique_id, result))
