"""The routing tables of every protocol version: action → handler."""

from __future__ import annotations

from typing import Final

from processors.csms import v16, v21, v201
from processors.csms.context import Handler

ROUTES: Final[dict[str, dict[str, Handler]]] = {
    "ocpp1.6": v16.ROUTES,
    "ocpp2.0.1": v201.ROUTES,
    "ocpp2.1": v21.ROUTES,
}


def routes(protocol: str) -> dict[str, Handler]:
    return ROUTES[protocol]
