"""1.6 GetLocalListVersion and SendLocalList: the list and its version are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Device
from evbus.sim.effects import Reply


def get_local_list_version(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    enabled = device.keys.flag("LocalAuthListEnabled")
    return Reply({"listVersion": device.local_list_version if enabled else -1})


def send_local_list(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if not device.keys.flag("LocalAuthListEnabled"):
        return Reply({"status": "NotSupported"})
    entries = payload.get("localAuthorizationList", [])
    if len(entries) > device.keys.integer("SendLocalListMaxLength"):
        return Reply({"status": "Failed"})
    version = payload["listVersion"]
    if payload["updateType"] == "Full":
        device.local_list = {e["idTag"]: e["idTagInfo"] for e in entries if "idTagInfo" in e}
    else:
        if version <= device.local_list_version:
            return Reply({"status": "VersionMismatch"})
        for e in entries:
            if "idTagInfo" in e:
                device.local_list[e["idTag"]] = e["idTagInfo"]
            else:
                device.local_list.pop(e["idTag"], None)
    device.local_list_version = version
    return Reply({"status": "Accepted"})
