"""OCPP 1.6 (with the security extension): the routing table of calls a charge point sends."""

from processors.csms.context import Handler
from processors.csms.v16 import (
    authorize,
    boot_notification,
    data_transfer,
    heartbeat,
    notifications,
    sign_certificate,
    start_transaction,
    stop_transaction,
)

ROUTES: dict[str, Handler] = {
    "Authorize": authorize.handle,
    "BootNotification": boot_notification.handle,
    "DataTransfer": data_transfer.handle,
    "Heartbeat": heartbeat.handle,
    "StartTransaction": start_transaction.handle,
    "StopTransaction": stop_transaction.handle,
    "SignCertificate": sign_certificate.handle,
    **dict.fromkeys(notifications.ACKNOWLEDGED, notifications.acknowledge),
}
