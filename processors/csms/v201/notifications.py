"""2.0.1 calls whose answer is an empty acknowledgement; what they report lives on in the stream."""

from processors.csms.context import CallContext, Payload

ACKNOWLEDGED = (
    "ClearedChargingLimit",
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
    "StatusNotification",
)


async def acknowledge(ctx: CallContext, payload: Payload) -> Payload:
    return {}
