"""CALLs new in 2.1 that a plain AC station answers: tariffs, periodic event streams, DER control
(not supported: no inverter), battery swap (not a swap station), priority charging, dynamic schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Device
from evbus.sim.effects import Reply, status_info


def afrr_signal(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})


def adjust_periodic_event_stream(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Rejected", "statusInfo": status_info("UnknownStream")})


def get_periodic_event_stream(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({})


def change_transaction_tariff(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if device.transaction(payload["transactionId"]) is None:
        return Reply({"status": "TxNotFound"})
    return Reply({"status": "Accepted"})


def set_default_tariff(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["evseId"]
    if number != 0 and number not in device.connectors:
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
    device.default_tariffs[number] = payload["tariff"]
    return Reply({"status": "Accepted"})


def get_tariffs(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["evseId"]
    found = {evse: tariff for evse, tariff in device.default_tariffs.items() if number == 0 or evse in (0, number)}
    if not found:
        return Reply({"status": "NoTariff"})
    assignments = [
        {"tariffId": tariff["tariffId"], "tariffKind": "DefaultTariff", "evseIds": [evse]}
        for evse, tariff in found.items()
    ]
    return Reply({"status": "Accepted", "tariffAssignments": assignments})


def clear_tariffs(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    ids = payload.get("tariffIds")
    number = payload.get("evseId")
    results = []
    for evse, tariff in list(device.default_tariffs.items()):
        if (ids is None or tariff["tariffId"] in ids) and number in (None, evse):
            del device.default_tariffs[evse]
            results.append({"status": "Accepted", "tariffId": tariff["tariffId"]})
    return Reply({"clearTariffsResult": results or [{"status": "NoTariff"}]})


def der_not_supported(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "NotSupported"})


def notify_allowed_energy_transfer(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if device.transaction(payload["transactionId"]) is None:
        return Reply({"status": "Rejected", "statusInfo": status_info("TxNotFound")})
    return Reply({"status": "Accepted"})


def notify_web_payment_started(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({})


def request_battery_swap(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Rejected", "statusInfo": status_info("NoBatterySwap")})


def update_dynamic_schedule(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if payload["chargingProfileId"] not in device.profiles:
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownProfile")})
    return Reply({"status": "Accepted"})


def use_priority_charging(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if device.transaction(payload["transactionId"]) is None:
        return Reply({"status": "Rejected", "statusInfo": status_info("TxNotFound")})
    return Reply({"status": "NoProfile"})
