"""1.6 GetDiagnostics, UpdateFirmware, GetLog and SignedUpdateFirmware: accepted, then the status
notifications a real charge point sends while it uploads or installs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from evbus.clock import parse_rfc3339
from evbus.sim.device import Device
from evbus.sim.effects import Reply, Send

STEP: Final = 0.5  # seconds between status notifications
MAX_WAIT: Final = 60.0  # a retrieve date further ahead is brought forward to this


def file_name(device: Device, kind: str, now: datetime) -> str:
    return f"{kind}-{device.station_id}-{now.strftime('%Y%m%dT%H%M%SZ')}.log"


def until(moment: str | None, now: datetime) -> float:
    """Seconds until ``moment`` (0 when past or unreadable), at most :data:`MAX_WAIT`."""
    if not moment:
        return 0.0
    try:
        return min(max((parse_rfc3339(moment) - now).total_seconds(), 0.0), MAX_WAIT)
    except ValueError:
        return 0.0


def steps(action: str, statuses: tuple[str, ...], first: float = STEP, **extra: Any) -> tuple[Send, ...]:
    return tuple(Send(action, {"status": s, **extra}, first if i == 0 else STEP) for i, s in enumerate(statuses))


def get_diagnostics(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    sends = steps("DiagnosticsStatusNotification", ("Uploading", "Uploaded"))
    return Reply({"fileName": file_name(device, "diagnostics", now)}, sends)


def update_firmware(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    wait = until(payload.get("retrieveDate"), now)
    statuses = ("Downloading", "Downloaded", "Installing", "Installed")
    return Reply({}, steps("FirmwareStatusNotification", statuses, first=wait + STEP))


def get_log(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    sends = steps("LogStatusNotification", ("Uploading", "Uploaded"), requestId=payload["requestId"])
    return Reply({"status": "Accepted", "filename": file_name(device, payload["logType"], now)}, sends)


def signed_update_firmware(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    wait = until(payload["firmware"].get("retrieveDateTime"), now)
    statuses = ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed")
    sends = steps("SignedFirmwareStatusNotification", statuses, first=wait + STEP, requestId=payload["requestId"])
    return Reply({"status": "Accepted"}, sends)
