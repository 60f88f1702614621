"""2.1 GetCertificateChainStatus: no OCSP responder is configured, so every lookup failed."""

from processors.csms.context import CallContext, Payload


async def get_certificate_chain_status(ctx: CallContext, payload: Payload) -> Payload:
    return {
        "certificateStatus": [
            {
                "source": request["source"],
                "status": "Failed",
                "nextUpdate": ctx.now_text(),
                "certificateHashData": request["certificateHashData"],
            }
            for request in payload["certificateStatusRequests"]
        ]
    }
