"""Certificates a simulated station stores: identified by made-up but stable hash data."""

from __future__ import annotations

import hashlib
from typing import Any, Final

FAKE_CSR: Final = (
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    "MIIBWjCCAQACAQAwRzELMAkGA1UEBhMCREUxDjAMBgNVBAoMBWV2YnVzMSgwJgYDVQQDDB9ldmJ1cyBzaW11bGF0ZWQg\n"
    "-----END CERTIFICATE REQUEST-----\n"
)


def hash_data(certificate: str) -> dict[str, Any]:
    """``CertificateHashDataType`` of a PEM text (SHA256 of made-up issuer name and key)."""
    digest = hashlib.sha256(certificate.encode()).hexdigest()
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(b"issuer:" + certificate.encode()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(b"key:" + certificate.encode()).hexdigest(),
        "serialNumber": digest[:20],
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")
    return all(a.get(k) == b.get(k) for k in keys)


def install(store: list[dict[str, Any]], certificate_type: str, certificate: str) -> None:
    data = hash_data(certificate)
    if not any(same(entry["hash"], data) for entry in store):
        store.append({"certificateType": certificate_type, "hash": data})


def delete(store: list[dict[str, Any]], data: dict[str, Any]) -> bool:
    for entry in store:
        if same(entry["hash"], data):
            store.remove(entry)
            return True
    return False
