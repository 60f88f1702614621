"""Bodies of evbus's own messages: lifecycle and security events, KV values. camelCase on the wire."""

from __future__ import annotations

from typing import Literal

import msgspec


class ConnectionEvent(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``ocpp.{station}.conn.{event}``."""

    event: Literal["connected", "disconnected", "replaced", "rejected"]
    remote_address: str | None = None
    protocol: str | None = None
    close_code: int | None = None
    reason: str | None = None
    connection: str | None = None


class SecurityEvent(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``events.security.{category}``. ``severity`` has no default so that it is always
    written (``omit_defaults`` leaves out fields equal to their default); events stored before it
    was are read as ``warning``."""

    category: str
    severity: Literal["info", "warning", "critical"]
    station: str | None = None
    remote_address: str | None = None
    gateway: str | None = None
    detail: str = ""
    at: str = ""


class TransactionEvent(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Body of ``events.transaction.{station}.{event}`` (e.g. a stop for an id never issued)."""

    event: str
    station: str
    transaction_id: int | str
    unique_id: str
    at: str = ""


class Presence(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``stations``: which gateway holds a station's socket."""

    gateway: str
    connection: str
    protocol: str
    connected_at: str
    remote_address: str | None = None


SecurityProfile = Literal[0, 1, 2, 3]
"""OCPP security profiles: 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS (client certificate)."""


class StationRecord(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``registry``: a registered station. The password is stored only as a hash.

    ``security_profile`` None means the default: 1 with a password, 0 (open) without one.
    """

    password_hash: str | None = None
    description: str = ""
    security_profile: SecurityProfile | None = None

    @property
    def profile(self) -> SecurityProfile:
        """The security profile the gateway enforces for this station."""
        if self.security_profile is not None:
            return self.security_profile
        return 1 if self.password_hash else 0


class UserRecord(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``users``: an API user for ``{username, password}`` logins, password hashed."""

    password_hash: str


TokenStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]


class TokenRecord(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel", frozen=True):
    """Value of KV ``tokens``: one idTag / idToken."""

    id_tag: str
    status: TokenStatus = "Accepted"
    expiry_date: str | None = None
    parent_id_tag: str | None = None


encode = msgspec.json.Encoder().encode
