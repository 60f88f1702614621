"""Pure handshake parsing: station ids from paths (DESIGN §2), Basic credentials, subprotocols."""

from __future__ import annotations

import base64
from http import HTTPStatus

import pytest

from gateways.ocpp.handshake import (
    Refusal,
    basic_credentials,
    offered_subprotocols,
    select_protocol,
    station_id_from_path,
)


@pytest.mark.parametrize(
    ("path", "station"),
    [
        ("/ocpp/CP01", "CP01"),
        ("/CP01", "CP01"),
        ("/ocpp/CP.01", "CP.01"),
        ("/ocpp/CP%2E01", "CP.01"),
        ("/ocpp/a*b%3Ec", "a*b>c"),
        ("/ocpp/100%25", "100%"),
        ("/ocpp/Lades%C3%A4ule", "Ladesäule"),
        ("/ocpp/" + "A" * 48, "A" * 48),
        ("/ocpp/CP01?token=x", "CP01"),
    ],
)
def test_station_ids_from_paths(path: str, station: str) -> None:
    assert station_id_from_path(path) == station


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ocpp/", HTTPStatus.NOT_FOUND),
        ("/", HTTPStatus.NOT_FOUND),
        ("/ocpp/a/b", HTTPStatus.NOT_FOUND),
        ("/ocpp/" + "A" * 49, HTTPStatus.BAD_REQUEST),
        ("/ocpp/with%20space", HTTPStatus.BAD_REQUEST),
        ("/ocpp/tab%09", HTTPStatus.BAD_REQUEST),
        ("/ocpp/nul%00", HTTPStatus.BAD_REQUEST),
        ("/ocpp/%FF%FE", HTTPStatus.BAD_REQUEST),
    ],
)
def test_bad_station_ids_are_refused(path: str, status: HTTPStatus) -> None:
    refusal = station_id_from_path(path)
    assert isinstance(refusal, Refusal)
    assert refusal.status == status
    assert refusal.category == "bad_station_id"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials() -> None:
    assert basic_credentials(basic("CP01", "s3:cret")) == ("CP01", "s3:cret")
    assert basic_credentials(None) is None
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None


def test_newest_common_protocol_wins() -> None:
    assert select_protocol(offered_subprotocols(["ocpp1.6, ocpp2.0.1"])) == "ocpp2.0.1"
    assert select_protocol(["ocpp1.6", "ocpp2.1"]) == "ocpp2.1"
    assert select_protocol(["ocpp1.5", "mqtt"]) is None
    assert select_protocol([]) is None
