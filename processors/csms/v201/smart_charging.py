"""2.0.1/2.1 smart-charging negotiation: evbus does not compute charging schedules (yet)."""

from processors.csms.context import CallContext, Payload


async def reject(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Rejected"}
