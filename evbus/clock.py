"""Time: one injectable clock and the RFC 3339 format used in headers and payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, ``now``, or an age before ``now`` such as ``90s``, ``15m``, ``2h``, ``7d``."""
    text = text.strip()
    if text == "now":
        return now
    unit = _UNITS.get(text[-1:])
    if unit is not None and text[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(seconds=float(text[:-1]) * unit)
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ValueError(f"not a time or an age: {text!r} (use e.g. 2h, 15m, 7d or 2026-11-21T10:00:00Z)") from None


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a time without a zone is UTC, like every time evbus writes). A moment
    that has no UTC form (year 1 east of Greenwich, 9999-12-31 west of it) becomes the earliest or
    latest time there is: as a bound of a range it means "from the beginning" or "to the end"."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
