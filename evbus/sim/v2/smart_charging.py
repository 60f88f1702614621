"""2.0.1/2.1 SetChargingProfile, ClearChargingProfile, GetChargingProfiles and GetCompositeSchedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Reply, Send, status_info
from evbus.sim.v16.smart_charging import limit
from evbus.sim.wire import timestamp

MAX_STACK_LEVEL: Final = 8


def set_charging_profile(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["evseId"]
    profile = payload["chargingProfile"]
    purpose = profile["chargingProfilePurpose"]
    c = device.connectors.get(number)
    if number != 0 and c is None:
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
    if purpose == "ChargingStationMaxProfile" and number != 0:
        return Reply({"status": "Rejected", "statusInfo": status_info("InvalidProfile")})
    if purpose == "TxProfile" and (c is None or c.transaction is None):
        return Reply({"status": "Rejected", "statusInfo": status_info("TxNotFound")})
    if profile["stackLevel"] > MAX_STACK_LEVEL:
        return Reply({"status": "Rejected", "statusInfo": status_info("InvalidStackLevel")})
    for pid, (where, other) in list(device.profiles.items()):
        slot = (where, other["chargingProfilePurpose"], other["stackLevel"])
        if pid == profile["id"] or slot == (number, purpose, profile["stackLevel"]):
            del device.profiles[pid]
    device.profiles[profile["id"]] = (number, profile)
    return Reply({"status": "Accepted"})


def clear_charging_profile(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    criteria = payload.get("chargingProfileCriteria", {})
    matched = [
        pid
        for pid, (where, profile) in device.profiles.items()
        if ("chargingProfileId" not in payload or pid == payload["chargingProfileId"])
        and criteria.get("evseId", where) == where
        and criteria.get("chargingProfilePurpose", profile["chargingProfilePurpose"])
        == profile["chargingProfilePurpose"]
        and criteria.get("stackLevel", profile["stackLevel"]) == profile["stackLevel"]
    ]
    for pid in matched:
        del device.profiles[pid]
    return Reply({"status": "Accepted" if matched else "Unknown"})


def get_charging_profiles(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    criteria = payload["chargingProfile"]
    ids = criteria.get("chargingProfileId")
    by_evse: dict[int, list[dict[str, Any]]] = {}
    for pid, (where, profile) in device.profiles.items():
        if (
            ("evseId" in payload and payload["evseId"] != where)
            or (ids and pid not in ids)
            or criteria.get("chargingProfilePurpose", profile["chargingProfilePurpose"])
            != profile["chargingProfilePurpose"]
            or criteria.get("stackLevel", profile["stackLevel"]) != profile["stackLevel"]
            or "CSO" not in criteria.get("chargingLimitSource", ["CSO"])
        ):
            continue
        by_evse.setdefault(where, []).append(profile)
    if not by_evse:
        return Reply({"status": "NoProfiles"})
    reports = [
        Send(
            "ReportChargingProfiles",
            {
                "requestId": payload["requestId"],
                "chargingLimitSource": "CSO",
                "evseId": where,
                "chargingProfile": profiles,
                "tbc": n < len(by_evse) - 1,
            },
            0.1,
        )
        for n, (where, profiles) in enumerate(sorted(by_evse.items()))
    ]
    return Reply({"status": "Accepted"}, tuple(reports))


def get_composite_schedule(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    number = payload["evseId"]
    if number != 0 and number not in device.connectors:
        return Reply({"status": "Rejected", "statusInfo": status_info("UnknownEvse")})
    unit = payload.get("chargingRateUnit", "A")
    schedule = {
        "evseId": number,
        "duration": payload["duration"],
        "scheduleStart": timestamp(now),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit(device, number, unit)}],
    }
    return Reply({"status": "Accepted", "schedule": schedule})
