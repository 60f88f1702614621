"""1.6 DataTransfer: evbus runs no vendor extensions, so every vendor is unknown."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "UnknownVendorId"}
