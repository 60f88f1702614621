"""What a simulated 1.6 charge point sends: boot, statuses, authorization, transactions, meter values."""

from __future__ import annotations

import random
from typing import Any, Final

from evbus.sim.certificates import FAKE_CSR
from evbus.sim.device import Connector, Device, Reading, Transaction, readings
from evbus.sim.wire import timestamp

FIRMWARE: Final = "evbus-sim 1.0"
IDLE_NOTIFICATIONS: Final = {  # TriggerMessage of a notification: "nothing going on"
    "DiagnosticsStatusNotification": {"status": "Idle"},
    "FirmwareStatusNotification": {"status": "Idle"},
    "LogStatusNotification": {"status": "Idle"},
    "SignedFirmwareStatusNotification": {"status": "Idle"},
    "SignCertificate": {"csr": FAKE_CSR},
}


class Messages16:
    def __init__(self, device: Device) -> None:
        self.device = device

    def boot(self, reason: str) -> dict[str, Any]:
        return {
            "chargePointVendor": "evbus",
            "chargePointModel": "sim-22",
            "chargePointSerialNumber": self.device.serial,
            "firmwareVersion": FIRMWARE,
            "meterType": "sim-meter",
        }

    def status_text(self, c: Connector) -> str:
        return c.status

    def status(self, c: Connector) -> dict[str, Any]:
        return {"connectorId": c.id, "errorCode": "NoError", "status": c.status, "timestamp": timestamp()}

    def authorize(self, id_tag: str, token_type: str) -> dict[str, Any]:
        return {"idTag": id_tag}

    def authorized(self, answer: dict[str, Any]) -> bool:
        return bool(answer.get("idTagInfo", {}).get("status") == "Accepted")

    def start(self, c: Connector, tx: Transaction) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "connectorId": c.id,
            "idTag": tx.id_tag,
            "meterStart": round(tx.meter_start_wh),
            "timestamp": timestamp(),
        }
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return "StartTransaction", payload

    def started(self, answer: dict[str, Any], tx: Transaction) -> bool:
        tx.ocpp_id = answer.get("transactionId")
        return self.authorized(answer)

    def samples(self, c: Connector, context: str, rng: random.Random | None) -> list[dict[str, Any]]:
        """The energy register; with ``rng`` also power, current and voltage while charging."""
        return [_sample(r, context) for r in readings(c, rng)]

    def meter_values(self, c: Connector, context: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "connectorId": c.id,
            "meterValue": [{"timestamp": timestamp(), "sampledValue": self.samples(c, context, rng)}],
        }
        if c.transaction is not None and isinstance(c.transaction.ocpp_id, int):
            payload["transactionId"] = c.transaction.ocpp_id
        return "MeterValues", payload

    def update(self, c: Connector, rng: random.Random, trigger: bool = False) -> tuple[str, dict[str, Any]]:
        return self.meter_values(c, "Trigger" if trigger else "Sample.Periodic", rng)

    def stop(self, c: Connector, tx: Transaction, reason: str) -> tuple[str, dict[str, Any]] | None:
        if not isinstance(tx.ocpp_id, int):
            return None  # the CSMS never gave this transaction an id
        now = timestamp()
        return "StopTransaction", {
            "idTag": tx.id_tag,
            "meterStop": round(c.register_wh),
            "timestamp": now,
            "transactionId": tx.ocpp_id,
            "reason": reason,
            "transactionData": [{"timestamp": now, "sampledValue": self.samples(c, "Transaction.End", None)}],
        }

    def notification(self, message: str) -> tuple[str, dict[str, Any]] | None:
        payload = IDLE_NOTIFICATIONS.get(message)
        return None if payload is None else (message, dict(payload))


def _sample(r: Reading, context: str) -> dict[str, Any]:
    sample = {"value": str(r.value), "context": context, "measurand": r.measurand, "location": "Outlet", "unit": r.unit}
    if r.phase:
        sample["phase"] = r.phase
    return sample
