"""2.0.1/2.1 Reset, ChangeAvailability, UnlockConnector, ClearCache, DataTransfer, TriggerMessage,
GetTransactionStatus, CostUpdated and SetNetworkProfile."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Effect, Reboot, Reply, SendStatus, Stop, Trigger, status_info


def reset(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload.get("evseId")
    if number is not None:  # one EVSE: its transaction ends, the station stays up
        c = device.connectors.get(number)
        if c is None:
            return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
        if c.transaction is None:
            return Reply({"status": "Accepted"})
        if payload["type"] == "OnIdle":
            return Reply({"status": "Scheduled"})
        c.stop_reason = "ImmediateReset"
        return Reply({"status": "Accepted"}, (Stop(c.id),))
    busy = any(c.transaction is not None for c in device.connectors.values())
    if payload["type"] == "OnIdle" and busy:
        device.reset_when_idle = True
        return Reply({"status": "Scheduled"})
    return Reply({"status": "Accepted"}, (Reboot("ImmediateReset"),))


def change_availability(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    evse = payload.get("evse")
    if evse is not None and (evse["id"] not in device.connectors or evse.get("connectorId", 1) != 1):
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
    targets = [device.connectors[evse["id"]]] if evse and evse["id"] else list(device.connectors.values())
    operative = payload["operationalStatus"] == "Operative"
    scheduled = False
    effects: list[Effect] = []
    for c in targets:
        if not operative and c.phase != "idle":
            c.inoperative_when_idle = scheduled = True
            continue
        c.inoperative_when_idle = False
        if c.operative != operative:
            c.operative = operative
            device.variables.put("EVSE", "Available", str(operative).lower(), evse=c.id)
            device.variables.put("EVSE", "AvailabilityState", c.status, evse=c.id)
            effects.append(SendStatus(c.id))
    return Reply({"status": "Scheduled" if scheduled else "Accepted"}, tuple(effects))


def unlock_connector(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.connectors.get(payload["evseId"])
    if c is None or payload["connectorId"] != 1:
        return Reply({"status": "UnknownConnector"})
    if c.transaction is not None:
        return Reply({"status": "OngoingAuthorizedTransaction"})
    return Reply({"status": "Unlocked"})


TRIGGERS: Final = frozenset(
    {
        "BootNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "SignChargingStationCertificate",
        "SignV2GCertificate",
        "SignCombinedCertificate",
        "StatusNotification",
        "TransactionEvent",
        "PublishFirmwareStatusNotification",
    }
)


def trigger_message(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    message = payload["requestedMessage"]
    if message not in TRIGGERS:  # 2.1 SignV2G20Certificate, CustomTrigger
        return Reply({"status": "NotImplemented"})
    evse = payload.get("evse")
    number = evse["id"] if evse else None
    if number and number not in device.connectors:
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
    if message == "TransactionEvent":
        running = [c for c in device.connectors.values() if c.transaction and (not number or c.id == number)]
        if not running:
            return Reply({"status": "Rejected", "statusInfo": status_info("NoTransaction")})
    return Reply({"status": "Accepted"}, (Trigger(message, number or None),))


def get_transaction_status(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    answer: dict[str, Any] = {"messagesInQueue": False}
    if "transactionId" in payload:
        answer["ongoingIndicator"] = device.transaction(payload["transactionId"]) is not None
    return Reply(answer)


def cost_updated(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({})


def set_network_profile(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})
