"""2.0.1/2.1 Authorize: the token store decides."""

from processors.csms.authorization import id_token_info
from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    token = payload["idToken"]
    record = ctx.services.tokens.get(token["idToken"])
    return {"idTokenInfo": id_token_info(record, ctx.now(), ctx.settings.unknown_tokens, token["type"])}
