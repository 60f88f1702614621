"""1.6 StopTransaction: always accepted (the energy was delivered); an id we never issued is an orphan."""

from processors.csms.authorization import id_tag_info
from processors.csms.context import CallContext, Payload


async def handle(ctx: CallContext, payload: Payload) -> Payload:
    transaction_id = payload["transactionId"]
    if not await ctx.services.transactions.issued(transaction_id):
        await ctx.services.events.orphan_stop(ctx.station, transaction_id, ctx.unique_id)
    if "idTag" not in payload:
        return {}
    record = ctx.services.tokens.get(payload["idTag"])
    return {"idTagInfo": id_tag_info(record, ctx.now(), ctx.settings.unknown_tokens)}
