"""Pure parts of the websocket handshake: station id from the path, subprotocol, and what a station's
OCPP security profile asks of its connection (TLS, client certificate, Basic credentials)."""

from __future__ import annotations

import base64
import binascii
import logging
import unicodedata
from http import HTTPStatus
from typing import Final, Literal
from urllib.parse import unquote_to_bytes, urlsplit

import msgspec

from gateways.ocpp.tls import PeerCertificate
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


def basic_password(header: str | None, station: str) -> str | Refusal:
    """The password of ``Authorization: Basic base64(station:password)``, whose user must be the
    station id. Compared against the known id rather than split at the first colon: OCPP 2.0.1
    station ids may contain ``:`` themselves."""
    if not header:
        return Refusal(HTTPStatus.UNAUTHORIZED, "no Basic credentials", "auth_failed")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return Refusal(HTTPStatus.UNAUTHORIZED, "no Basic credentials", "auth_failed")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return Refusal(HTTPStatus.UNAUTHORIZED, "garbled Basic credentials", "auth_failed")
    user = station + ":"
    if not decoded.startswith(user):
        return Refusal(HTTPStatus.UNAUTHORIZED, "wrong username or password", "auth_failed")
    return decoded[len(user) :]


Check = Literal["open", "password"]
"""What is left to check once :func:`security_check` passed: nothing, or the Basic password."""


def security_check(station: str, profile: int, peer: PeerCertificate) -> Check | Refusal:
    """What the station's security profile (OCPP 2.0.1 A00, the 1.6 security whitepaper) asks of
    this connection. 0: nothing; 1: a Basic password, over ``ws://`` or ``wss://``; 2: TLS and a
    Basic password; 3: TLS with a verified client certificate whose subject CN is the station id.

    The transport and the certificate are refused with 403 (no credentials would help on this
    connection), a missing or wrong password with 401 and a Basic challenge."""
    if profile <= 0:
        return "open"
    if profile == 1:
        return "password"
    if profile == 2:
        if not peer.tls:
            return Refusal(HTTPStatus.FORBIDDEN, "security profile 2 needs TLS (wss://)", "auth_failed")
        return "password"
    if not peer.tls:
        reason = "security profile 3 needs TLS (wss://) with a client certificate"
        return Refusal(HTTPStatus.FORBIDDEN, reason, "certificate_failed")
    if not peer.verified:
        return Refusal(HTTPStatus.FORBIDDEN, "security profile 3 needs a client certificate", "certificate_failed")
    if station not in peer.common_names:
        names = ", ".join(repr(name[:64]) for name in peer.common_names)
        reason = f"client certificate CN {names} is not the station id"
        return Refusal(HTTPStatus.FORBIDDEN, reason, "certificate_failed")
    return "open"


class RedactCredentials(logging.Filter):
    """Blanks ``Authorization`` values in websockets' debug lines of handshake headers, so a
    station's Basic password never reaches a log whatever level websockets logs at."""

    SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in self.SECRET_HEADERS:
            record.args = (args[0], "[redacted]")
        return True


def offered_subprotocols(header_values: list[str]) -> list[str]:
    return [p.strip() for value in header_values for p in value.split(",") if p.strip()]


def select_protocol(offered: list[str]) -> Protocol | None:
    """The newest protocol both sides speak (the server's order wins)."""
    for protocol in PROTOCOLS:
        if protocol in offered:
            return protocol
    return None
