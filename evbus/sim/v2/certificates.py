"""2.0.1/2.1 InstallCertificate, DeleteCertificate, GetInstalledCertificateIds and CertificateSigned."""

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
    wanted = payload.get("certificateType")
    chain = [
        {"certificateType": e["certificateType"], "certificateHashData": e["hash"]}
        for e in device.certificates
        if not wanted or e["certificateType"] in wanted
    ]
    if not chain:
        return Reply({"status": "NotFound"})
    return Reply({"status": "Accepted", "certificateHashDataChain": chain})


def certificate_signed(device: Device, payload: dict[str, Any], now: datetime) -> Reply:
    return Reply({"status": "Accepted"})
