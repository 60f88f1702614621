"""Time: one injectable clock and the RFC 3339 format used in headers and payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime, timespec: str = "microseconds") -> str:
    """``2026-11-21T09:40:00.123456Z`` — UTC, with a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """Parse an OCPP date-time; one without an offset is taken as UTC (real chargers send those)."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
