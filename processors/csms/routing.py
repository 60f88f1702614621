"""The handler type and the routing tables of every protocol version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from processors.csms.context import CallContext, Payload

Handler = Callable[[CallContext, Payload], Awaitable[Payload]]


def routes(protocol: str) -> dict[str, Handler]:
    from processors.csms import v16, v21, v201

    return {"ocpp1.6": v16.ROUTES, "ocpp2.0.1": v201.ROUTES, "ocpp2.1": v21.ROUTES}[protocol]
