"""1.6 Heartbeat: the CSMS's time (stations set their clocks by it)."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"currentTime": ctx.now_text()}
