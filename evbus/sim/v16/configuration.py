"""1.6 GetConfiguration and ChangeConfiguration over the station's key store."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.sim.device import Device
from evbus.sim.effects import Reply, Reschedule

RESCHEDULING: Final = frozenset({"HeartbeatInterval", "MeterValueSampleInterval"})


def get_configuration(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    known: list[dict[str, Any]] = []
    unknown: list[str] = []
    for name in payload.get("key") or device.keys.names():
        key = device.keys.get(name)
        if key is None:
            unknown.append(name)
        else:
            known.append({"key": name, "readonly": key.readonly, "value": key.value})
    answer: dict[str, Any] = {}
    if known:
        answer["configurationKey"] = known
    if unknown:
        answer["unknownKey"] = unknown
    return Reply(answer)


def change_configuration(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    name = payload["key"]
    status = device.keys.change(name, payload["value"])
    if status == "Accepted" and name == "MeterValueSampleInterval":
        device.meter_period = float(device.keys.integer(name))
    effects = (Reschedule(),) if status == "Accepted" and name in RESCHEDULING else ()
    return Reply({"status": status}, effects)
