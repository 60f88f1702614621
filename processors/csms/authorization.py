"""Deciding whether an idTag / idToken may charge: a pure function of the token store's record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evbus.clock import parse_rfc3339, rfc3339
from evbus.settings import Policy
from schemas.records import TokenRecord


def status_of(record: TokenRecord | None, now: datetime, unknown_tokens: Policy) -> str:
    """1.6 AuthorizationStatus: Accepted, Blocked, Expired or Invalid."""
    if record is None:
        return "Accepted" if unknown_tokens == "accept" else "Invalid"
    if record.status == "Accepted" and record.expiry_date and _expired(record.expiry_date, now):
        return "Expired"
    return record.status


def _expired(expiry_date: str, now: datetime) -> bool:
    try:
        return parse_rfc3339(expiry_date) <= now
    except ValueError:
        return True  # an expiry we cannot read is no licence to charge


def _wire_date(text: str) -> str | None:
    """A stored expiry as the station must read it (RFC 3339, UTC); None if unreadable."""
    try:
        return rfc3339(parse_rfc3339(text), timespec="seconds")
    except ValueError:
        return None


def id_tag_info(record: TokenRecord | None, now: datetime, unknown_tokens: Policy) -> dict[str, Any]:
    """1.6 ``idTagInfo``."""
    info: dict[str, Any] = {"status": status_of(record, now, unknown_tokens)}
    if record is not None:
        if record.expiry_date and (expiry := _wire_date(record.expiry_date)):
            info["expiryDate"] = expiry
        if record.parent_id_tag:
            info["parentIdTag"] = record.parent_id_tag
    return info


def id_token_info(
    record: TokenRecord | None, now: datetime, unknown_tokens: Policy, token_type: str = ""
) -> dict[str, Any]:
    """2.0.1/2.1 ``idTokenInfo``: an unknown token is ``Unknown``, not ``Invalid``.

    A ``NoAuthorization`` token carries no identity (its idToken is empty): the station charges
    without asking anyone, so answering anything but Accepted would make it stop the session.
    """
    if token_type == "NoAuthorization":  # noqa: S105 - an IdTokenEnumType value, not a secret
        return {"status": "Accepted"}
    status = status_of(record, now, unknown_tokens)
    if record is None and status == "Invalid":
        status = "Unknown"
    info: dict[str, Any] = {"status": status}
    if record is not None:
        if record.expiry_date and (expiry := _wire_date(record.expiry_date)):
            info["cacheExpiryDateTime"] = expiry
        if record.parent_id_tag:
            info["groupIdToken"] = {"idToken": record.parent_id_tag, "type": "Central"}
    return info
