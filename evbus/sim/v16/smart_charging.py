"""1.6 SetChargingProfile, ClearChargingProfile and GetCompositeSchedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Reply
from evbus.sim.wire import timestamp

MAX_STACK_LEVEL: Final = 8
CONNECTOR_LIMIT: Final = {"A": 32.0, "W": 22080.0}


def set_charging_profile(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["connectorId"]
    profile = payload["csChargingProfiles"]
    purpose = profile["chargingProfilePurpose"]
    c = device.connectors.get(number)
    if number != 0 and c is None:
        return Reply({"status": "Rejected"})
    if purpose == "ChargePointMaxProfile" and number != 0:
        return Reply({"status": "Rejected"})
    if purpose == "TxProfile" and (c is None or c.transaction is None):
        return Reply({"status": "Rejected"})
    if profile["stackLevel"] > MAX_STACK_LEVEL:
        return Reply({"status": "Rejected"})
    for pid, (where, other) in list(device.profiles.items()):
        same_slot = (where, other["chargingProfilePurpose"], other["stackLevel"]) == (
            number,
            purpose,
            profile["stackLevel"],
        )
        if pid == profile["chargingProfileId"] or same_slot:
            del device.profiles[pid]
    device.profiles[profile["chargingProfileId"]] = (number, profile)
    return Reply({"status": "Accepted"})


def clear_charging_profile(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    matched = [
        pid
        for pid, (where, profile) in device.profiles.items()
        if ("id" not in payload or pid == payload["id"])
        and ("connectorId" not in payload or where == payload["connectorId"])
        and payload.get("chargingProfilePurpose", profile["chargingProfilePurpose"])
        == profile["chargingProfilePurpose"]
        and payload.get("stackLevel", profile["stackLevel"]) == profile["stackLevel"]
    ]
    for pid in matched:
        del device.profiles[pid]
    return Reply({"status": "Accepted" if matched else "Unknown"})


def limit(device: Device, number: int, unit: str) -> float:
    """The lowest first-period limit of the profiles on ``number`` or the whole station, in ``unit``."""
    limits = [CONNECTOR_LIMIT[unit]]
    for where, profile in device.profiles.values():
        schedule = profile["chargingSchedule"]
        schedule = schedule[0] if isinstance(schedule, list) else schedule  # 2.x: a list of schedules
        if where in (0, number) and schedule["chargingRateUnit"] == unit and schedule["chargingSchedulePeriod"]:
            limits.append(float(schedule["chargingSchedulePeriod"][0]["limit"]))
    return round(min(limits), 1)


def get_composite_schedule(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["connectorId"]
    if number != 0 and number not in device.connectors:
        return Reply({"status": "Rejected"})
    unit = payload.get("chargingRateUnit", "A")
    start = timestamp(now)
    return Reply(
        {
            "status": "Accepted",
            "connectorId": number,
            "scheduleStart": start,
            "chargingSchedule": {
                "duration": payload["duration"],
                "startSchedule": start,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit(device, number, unit)}],
            },
        }
    )
