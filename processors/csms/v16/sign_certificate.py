"""1.6 security extension SignCertificate: evbus has no certificate authority configured."""

from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Rejected"}
