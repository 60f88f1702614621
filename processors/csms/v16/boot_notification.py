"""1.6 BootNotification: accept, tell the time and the heartbeat interval."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Accepted", "currentTime": ctx.now_text(), "interval": ctx.settings.heartbeat_interval}
