"""What a simulated 2.0.1/2.1 charging station sends: boot, statuses, authorization,
TransactionEvents with meter values, notifications."""

from __future__ import annotations

import random
from typing import Any, Final

from evbus.sim.certificates import FAKE_CSR
from evbus.sim.device import Connector, Device, Reading, Transaction, connector_status, readings
from evbus.sim.wire import timestamp

FIRMWARE: Final = "evbus-sim 1.0"
TRIGGER_REASONS: Final = {  # stoppedReason -> triggerReason of the Ended event
    "DeAuthorized": "Deauthorized",
    "EVDisconnected": "EVCommunicationLost",
    "ImmediateReset": "ResetCommand",
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
}
IDLE_NOTIFICATIONS: Final = {
    "LogStatusNotification": ("LogStatusNotification", {"status": "Idle"}),
    "FirmwareStatusNotification": ("FirmwareStatusNotification", {"status": "Idle"}),
    "PublishFirmwareStatusNotification": ("PublishFirmwareStatusNotification", {"status": "Idle"}),
    "SignChargingStationCertificate": (
        "SignCertificate",
        {"csr": FAKE_CSR, "certificateType": "ChargingStationCertificate"},
    ),
    "SignV2GCertificate": ("SignCertificate", {"csr": FAKE_CSR, "certificateType": "V2GCertificate"}),
    "SignCombinedCertificate": ("SignCertificate", {"csr": FAKE_CSR}),
}


class Messages2:
    def __init__(self, device: Device) -> None:
        self.device = device

    def boot(self, reason: str) -> dict[str, Any]:
        return {
            "chargingStation": {
                "model": "sim-22",
                "vendorName": "evbus",
                "serialNumber": self.device.serial,
                "firmwareVersion": FIRMWARE,
            },
            "reason": reason,
        }

    def status_text(self, c: Connector) -> str:
        return connector_status(c.status)

    def status(self, c: Connector) -> dict[str, Any]:
        return {"timestamp": timestamp(), "connectorStatus": self.status_text(c), "evseId": c.id, "connectorId": 1}

    def authorize(self, id_tag: str, token_type: str) -> dict[str, Any]:
        return {"idToken": {"idToken": id_tag, "type": token_type}}

    def authorized(self, answer: dict[str, Any]) -> bool:
        return bool(answer.get("idTokenInfo", {}).get("status") == "Accepted")

    def _event(self, kind: str, trigger: str, c: Connector, tx: Transaction, info: dict[str, Any]) -> dict[str, Any]:
        payload = {
            "eventType": kind,
            "timestamp": timestamp(),
            "triggerReason": trigger,
            "seqNo": tx.seq_no,
            "transactionInfo": {"transactionId": tx.ocpp_id} | info,
            "evse": {"id": c.id, "connectorId": 1},
        }
        tx.seq_no += 1
        return payload

    def start(self, c: Connector, tx: Transaction) -> tuple[str, dict[str, Any]]:
        info: dict[str, Any] = {"chargingState": "Charging"}
        if tx.remote_start_id is not None:
            info["remoteStartId"] = tx.remote_start_id
        trigger = "RemoteStart" if tx.remote_start_id is not None else "Authorized"
        payload = self._event("Started", trigger, c, tx, info)
        payload["idToken"] = {"idToken": tx.id_tag, "type": tx.token_type}
        payload["meterValue"] = [
            {"timestamp": payload["timestamp"], "sampledValue": self.samples(c, "Transaction.Begin", None)}
        ]
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return "TransactionEvent", payload

    def started(self, answer: dict[str, Any], tx: Transaction) -> bool:
        info = answer.get("idTokenInfo")
        return info is None or info.get("status") == "Accepted"

    def samples(self, c: Connector, context: str, rng: random.Random | None) -> list[dict[str, Any]]:
        return [_sample(r, context) for r in readings(c, rng, soc=True)]

    def meter_values(self, c: Connector, context: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        return "MeterValues", {
            "evseId": c.id,
            "meterValue": [{"timestamp": timestamp(), "sampledValue": self.samples(c, context, rng)}],
        }

    def update(self, c: Connector, rng: random.Random, trigger: bool = False) -> tuple[str, dict[str, Any]]:
        tx = c.transaction
        if tx is None:
            return self.meter_values(c, "Trigger" if trigger else "Sample.Periodic", rng)
        context = "Trigger" if trigger else "Sample.Periodic"
        payload = self._event(
            "Updated", "Trigger" if trigger else "MeterValuePeriodic", c, tx, {"chargingState": "Charging"}
        )
        payload["meterValue"] = [{"timestamp": payload["timestamp"], "sampledValue": self.samples(c, context, rng)}]
        return "TransactionEvent", payload

    def stop(self, c: Connector, tx: Transaction, reason: str) -> tuple[str, dict[str, Any]] | None:
        trigger = TRIGGER_REASONS.get(reason, "AbnormalCondition")
        info = {"stoppedReason": reason, "chargingState": "EVConnected"}
        payload = self._event("Ended", trigger, c, tx, info)
        payload["meterValue"] = [
            {"timestamp": payload["timestamp"], "sampledValue": self.samples(c, "Transaction.End", None)}
        ]
        return "TransactionEvent", payload

    def notification(self, message: str) -> tuple[str, dict[str, Any]] | None:
        found = IDLE_NOTIFICATIONS.get(message)
        return None if found is None else (found[0], dict(found[1]))


def _sample(r: Reading, context: str) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "value": r.value,
        "context": context,
        "measurand": r.measurand,
        "unitOfMeasure": {"unit": r.unit},
    }
    if r.phase:
        sample["phase"] = r.phase
    if r.location:
        sample["location"] = r.location
    return sample
