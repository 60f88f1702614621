"""1.6 calls whose answer is an empty acknowledgement; what they say lives on in the stream."""

from processors.csms.context import CallContext, Payload

ACKNOWLEDGED = (
    "StatusNotification",
    "MeterValues",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "SecurityEventNotification",
    "LogStatusNotification",
    "SignedFirmwareStatusNotification",
)


async def acknowledge(ctx: CallContext, payload: Payload) -> Payload:
    return {}
