"""OCPP 2.0.1: the routing table of every call a charging station sends to the CSMS."""

from processors.csms.context import Handler
from processors.csms.v201 import (
    authorize,
    boot_notification,
    certificates,
    data_transfer,
    heartbeat,
    notifications,
    smart_charging,
    transaction_event,
)

ROUTES: dict[str, Handler] = {
    "Authorize": authorize.handle,
    "BootNotification": boot_notification.handle,
    "DataTransfer": data_transfer.handle,
    "Heartbeat": heartbeat.handle,
    "TransactionEvent": transaction_event.handle,
    "SignCertificate": certificates.sign_certificate,
    "Get15118EVCertificate": certificates.get_15118_ev_certificate,
    "GetCertificateStatus": certificates.get_certificate_status,
    "NotifyEVChargingNeeds": smart_charging.reject,
    "NotifyEVChargingSchedule": smart_charging.reject,
    **dict.fromkeys(notifications.ACKNOWLEDGED, notifications.acknowledge),
}
