"""2.0.1/2.1 TransactionEvent: the station owns the transaction id; we answer for its idToken.

Started, Updated and Ended are each applied by the projections from the stream; a repeat of the
same event (same seqNo) changes nothing there, so answering it again is harmless.
"""

from processors.csms.authorization import id_token_info
from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    token = payload.get("idToken")
    if not token:
        return {}
    record = ctx.services.tokens.get(token["idToken"])
    return {"idTokenInfo": id_token_info(record, ctx.now(), ctx.settings.unknown_tokens, token["type"])}
