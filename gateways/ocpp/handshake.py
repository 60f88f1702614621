"""Pure parts of the websocket handshake: station id from the path, Basic credentials, subprotocol."""

from __future__ import annotations

import base64
import binascii
import unicodedata
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote_to_bytes, urlsplit

import msgspec

from schemas.ocpp_j import PROTOCOLS, Protocol

MAX_STATION_ID: Final = 48


class Refusal(msgspec.Struct, frozen=True):
    """Why a handshake is refused: the HTTP status, and a security-event category."""

    status: HTTPStatus
    reason: str
    category: str


def station_id_from_path(path: str) -> str | Refusal:
    """``/ocpp/{id}`` or ``/{id}``, percent-decoded (DESIGN §2)."""
    segments = urlsplit(path).path.split("/")[1:]
    if len(segments) == 2 and segments[0] == "ocpp":
        raw = segments[1]
    elif len(segments) == 1:
        raw = segments[0]
    else:
        return Refusal(HTTPStatus.NOT_FOUND, "use /ocpp/{stationId} or /{stationId}", "bad_station_id")
    try:
        station = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(HTTPStatus.BAD_REQUEST, "station id is not UTF-8", "bad_station_id")
    if not station:
        return Refusal(HTTPStatus.NOT_FOUND, "station id is empty", "bad_station_id")
    if len(station) > MAX_STATION_ID:
        reason = f"station id is longer than {MAX_STATION_ID} characters"
        return Refusal(HTTPStatus.BAD_REQUEST, reason, "bad_station_id")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in station):
        reason = "station id contains whitespace or control characters"
        return Refusal(HTTPStatus.BAD_REQUEST, reason, "bad_station_id")
    return station


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(user:password)`` → (user, password); None if absent/garbled."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def offered_subprotocols(header_values: list[str]) -> list[str]:
    return [p.strip() for value in header_values for p in value.split(",") if p.strip()]


def select_protocol(offered: list[str]) -> Protocol | None:
    """The newest protocol both sides speak (the server's order wins)."""
    for protocol in PROTOCOLS:
        if protocol in offered:
            return protocol
    return None
