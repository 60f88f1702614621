"""1.6 security extension: InstallCertificate, DeleteCertificate, GetInstalledCertificateIds, CertificateSigned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.sim import certificates
from evbus.sim.device import Device
from evbus.sim.effects import Reply


def install_certificate(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    certificates.install(device.certificates, payload["certificateType"], payload["certificate"])
    return Reply({"status": "Accepted"})


def delete_certificate(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    found = certificates.delete(device.certificates, payload["certificateHashData"])
    return Reply({"status": "Accepted" if found else "NotFound"})


def get_installed_certificate_ids(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    found = [e["hash"] for e in device.certificates if e["certificateType"] == payload["certificateType"]]
    if not found:
        return Reply({"status": "NotFound"})
    return Reply({"status": "Accepted", "certificateHashData": found})


def certificate_signed(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})
