"""2.1 payment calls: evbus validates no VAT numbers."""

from processors.csms.context import CallContext, Payload


async def vat_number_validation(ctx: CallContext, payload: Payload) -> Payload:
    return {"vatNumber": payload["vatNumber"], "status": "Rejected"}
