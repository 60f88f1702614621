"""2.0.1/2.1 Heartbeat: the CSMS's time."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"currentTime": ctx.now_text()}
