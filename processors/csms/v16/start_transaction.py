"""1.6 StartTransaction: allocate the transaction id (a retry of the same call gets the same id)."""

from processors.csms.authorization import id_tag_info
from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    transaction_id = await ctx.services.transactions.start(ctx.station, ctx.unique_id)
    record = ctx.services.tokens.get(payload["idTag"])
    return {
        "transactionId": transaction_id,
        "idTagInfo": id_tag_info(record, ctx.now(), ctx.settings.unknown_tokens),
    }
