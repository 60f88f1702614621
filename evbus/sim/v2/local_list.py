"""2.0.1/2.1 GetLocalListVersion and SendLocalList."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Device
from evbus.sim.effects import Reply


def get_local_list_version(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"versionNumber": device.local_list_version})


def send_local_list(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    entries = payload.get("localAuthorizationList", [])
    version = payload["versionNumber"]
    if payload["updateType"] == "Full":
        device.local_list = {e["idToken"]["idToken"]: e["idTokenInfo"] for e in entries if "idTokenInfo" in e}
    else:
        if version <= device.local_list_version:
            return Reply({"status": "VersionMismatch"})
        for e in entries:
            if "idTokenInfo" in e:
                device.local_list[e["idToken"]["idToken"]] = e["idTokenInfo"]
            else:
                device.local_list.pop(e["idToken"]["idToken"], None)
    device.local_list_version = version
    device.variables.put("LocalAuthListCtrlr", "Entries", str(len(device.local_list)))
    return Reply({"status": "Accepted"})
