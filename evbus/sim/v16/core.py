"""1.6 Reset, ChangeAvailability, UnlockConnector, ClearCache, DataTransfer and (Extended)TriggerMessage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Effect, Reboot, Reply, SendStatus, Stop, Trigger

VENDOR_ID: Final = "evbus"  # DataTransfer with this vendorId is accepted and echoed


def reset(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"}, (Reboot("HardReset" if payload["type"] == "Hard" else "SoftReset"),))


def change_availability(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["connectorId"]
    targets = list(device.connectors.values()) if number == 0 else [device.connectors.get(number)]
    if None in targets:
        return Reply({"status": "Rejected"})
    operative = payload["type"] == "Operative"
    scheduled = False
    effects: list[Effect] = []
    for c in targets:
        assert c is not None
        if not operative and c.phase != "idle":
            c.inoperative_when_idle = scheduled = True
            continue
        c.inoperative_when_idle = False
        if c.operative != operative:
            c.operative = operative
            effects.append(SendStatus(c.id))
    return Reply({"status": "Scheduled" if scheduled else "Accepted"}, tuple(effects))


def unlock_connector(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    c = device.connectors.get(payload["connectorId"])
    if c is None:
        return Reply({"status": "NotSupported"})
    if c.transaction is not None:
        c.stop_reason = "UnlockCommand"
        return Reply({"status": "Unlocked"}, (Stop(c.id),))
    return Reply({"status": "Unlocked"})


def clear_cache(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})


def data_transfer(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if payload["vendorId"] != VENDOR_ID:
        return Reply({"status": "UnknownVendorId"})
    return Reply({"status": "Accepted"} | ({"data": payload["data"]} if "data" in payload else {}))


def _trigger(device: Device, message: str, connector: int | None) -> Reply:
    if connector is not None and connector != 0 and connector not in device.connectors:
        return Reply({"status": "Rejected"})
    return Reply({"status": "Accepted"}, (Trigger(message, connector or None),))


def trigger_message(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return _trigger(device, payload["requestedMessage"], payload.get("connectorId"))


EXTENDED: Final = {
    "FirmwareStatusNotification": "SignedFirmwareStatusNotification",
    "SignChargePointCertificate": "SignCertificate",
}


def extended_trigger_message(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    message = payload["requestedMessage"]
    return _trigger(device, EXTENDED.get(message, message), payload.get("connectorId"))
