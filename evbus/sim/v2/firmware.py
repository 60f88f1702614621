"""2.0.1/2.1 GetLog, UpdateFirmware, PublishFirmware and UnpublishFirmware, with the status
notifications that follow them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim.device import Device
from evbus.sim.effects import Reply, Send
from evbus.sim.v16.firmware import STEP, file_name, steps, until


def get_log(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    sends = steps("LogStatusNotification", ("Uploading", "Uploaded"), requestId=payload["requestId"])
    return Reply({"status": "Accepted", "filename": file_name(device, payload["logType"], now)}, sends)


def update_firmware(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    wait = until(payload["firmware"].get("retrieveDateTime"), now)
    statuses = ("Downloading", "Downloaded", "Installing", "Installed")
    sends = steps("FirmwareStatusNotification", statuses, first=wait + STEP, requestId=payload["requestId"])
    return Reply({"status": "Accepted"}, sends)


def publish_firmware(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    device.published_firmware = payload["checksum"]
    request_id = payload["requestId"]
    sends = (
        *steps("PublishFirmwareStatusNotification", ("Downloading", "Downloaded"), requestId=request_id),
        Send(
            "PublishFirmwareStatusNotification",
            {
                "status": "Published",
                "location": [f"http://{device.station_id}.local/firmware"],
                "requestId": request_id,
            },
            STEP,
        ),
    )
    return Reply({"status": "Accepted"}, sends)


def unpublish_firmware(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    if device.published_firmware != payload["checksum"]:
        return Reply({"status": "NoFirmware"})
    device.published_firmware = None
    return Reply({"status": "Unpublished"})
