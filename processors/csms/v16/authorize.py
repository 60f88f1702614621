"""1.6 Authorize: the token store decides."""

from processors.csms.authorization import id_tag_info
from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    record = ctx.services.tokens.get(payload["idTag"])
    return {"idTagInfo": id_tag_info(record, ctx.now(), ctx.settings.unknown_tokens)}
