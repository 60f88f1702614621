"""OCPP 2.1: the 2.0.1 table plus the calls 2.1 added.

NotifyPeriodicEventStream is a SEND (MessageTypeId 6): stored, never answered, so it has no route.
"""

from processors.csms import v201
from processors.csms.context import Handler
from processors.csms.v21 import certificates, payments
from processors.csms.v201 import notifications, smart_charging

ACKNOWLEDGED_21 = (
    "BatterySwap",
    "ClosePeriodicEventStream",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "ReportDERControl",
)

ROUTES: dict[str, Handler] = {
    **v201.ROUTES,
    "GetCertificateChainStatus": certificates.get_certificate_chain_status,
    "VatNumberValidation": payments.vat_number_validation,
    "OpenPeriodicEventStream": smart_charging.reject,  # evbus opens no periodic streams
    "PullDynamicScheduleUpdate": smart_charging.reject,
    **dict.fromkeys(ACKNOWLEDGED_21, notifications.acknowledge),
}
