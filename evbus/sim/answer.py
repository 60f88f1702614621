"""Answer a CALL from the CSMS: validate it against its version's schema, run its handler, frame
the CALLRESULT — or the CALLERROR the spec prescribes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Effect, Handler
from evbus.sim.v2 import ROUTES_21, ROUTES_201
from evbus.sim.v16 import ROUTES as ROUTES_16
from schemas import ocpp_j, payloads
from schemas.ocpp_j import ERROR_CODES, Protocol

log = logging.getLogger(__name__)

ROUTES: Final[dict[Protocol, dict[str, Handler]]] = {
    "ocpp1.6": ROUTES_16,
    "ocpp2.0.1": ROUTES_201,
    "ocpp2.1": ROUTES_21,
}


def answer(
    device: Device, unique_id: str, action: str, payload: dict[str, Any], now: datetime | None = None
) -> tuple[str, tuple[Effect, ...]]:
    """The frame that answers CALL ``unique_id`` and the effects to carry out after sending it."""
    protocol = device.protocol
    codes = ERROR_CODES[protocol]
    handler = ROUTES[protocol].get(action)
    if handler is None:
        if payloads.knows(protocol, action):  # a real action, but one a station does not receive
            return ocpp_j.call_error(unique_id, codes.not_supported, f"a station does not handle {action}"), ()
        return ocpp_j.call_error(unique_id, codes.not_implemented, f"{action} is not an {protocol} action"), ()
    invalid = payloads.validate(protocol, action, payload)
    if invalid is not None:
        return ocpp_j.call_error(unique_id, invalid.code, invalid.description, invalid.details), ()
    try:
        reply = handler(device, payload, now or datetime.now(UTC))
    except Exception as exc:  # a handler bug must not leave the CSMS without an answer
        log.exception("%s: %s %s failed", device.station_id, action, unique_id)
        return ocpp_j.call_error(unique_id, codes.internal, f"{type(exc).__name__}: {exc}"), ()
    return ocpp_j.call_result(unique_id, reply.payload), reply.effects
