"""2.0.1/2.1 certificate calls. evbus has no certificate authority or OCSP responder configured,
so it answers each with the status the spec gives for "cannot do that now"."""

from processors.csms.context import CallContext, Payload


async def sign_certificate(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Rejected"}


async def get_15118_ev_certificate(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Failed", "exiResponse": ""}


async def get_certificate_status(ctx: CallContext, payload: Payload) -> Payload:
    return {"status": "Failed"}
