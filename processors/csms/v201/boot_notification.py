"""2.0.1/2.1 BootNotification: accept, tell the time and the heartbeat interval."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"currentTime": ctx.now_text(), "interval": ctx.settings.heartbeat_interval, "status": "Accepted"}
