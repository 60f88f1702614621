"""2.0.1/2.1 Set/Get/ClearDisplayMessage and CustomerInformation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Device
from evbus.sim.effects import Reply, Send
from evbus.sim.wire import timestamp


def set_display_message(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    message = payload["message"]
    if "transactionId" in message and device.transaction(message["transactionId"]) is None:
        return Reply({"status": "UnknownTransaction"})
    device.display_messages[message["id"]] = message
    return Reply({"status": "Accepted"})


def get_display_messages(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    ids = payload.get("id")
    found = [
        m
        for m in device.display_messages.values()
        if (not ids or m["id"] in ids)
        and payload.get("priority", m["priority"]) == m["priority"]
        and payload.get("state", m.get("state")) == m.get("state")
    ]
    if not found:
        return Reply({"status": "Unknown"})
    report = {"requestId": payload["requestId"], "messageInfo": found, "tbc": False}
    return Reply({"status": "Accepted"}, (Send("NotifyDisplayMessages", report, 0.1),))


def clear_display_message(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    found = device.display_messages.pop(payload["id"], None)
    return Reply({"status": "Accepted" if found else "Unknown"})


def customer_information(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    identified = any(k in payload for k in ("customerCertificate", "idToken", "customerIdentifier"))
    if not identified:
        return Reply({"status": "Invalid"})
    if not payload["report"]:
        return Reply({"status": "Accepted"})
    data = "" if payload["clear"] else "no data stored about this customer"
    report = {"data": data, "tbc": False, "seqNo": 0, "generatedAt": timestamp(now), "requestId": payload["requestId"]}
    return Reply({"status": "Accepted"}, (Send("NotifyCustomerInformation", report, 0.1),))
