"""OCPP security profiles 1, 2 and 3 per station, against a real gateway with a ``wss://`` listener
(a trustme CA signs the server's and the stations' certificates), and the pure checks behind them."""

from __future__ import annotations

import base64
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trustme
import websockets
from websockets.exceptions import InvalidStatus

from evbus.passwords import hash_password
from evbus.settings import Settings, SettingsError
from gateways.ocpp.handshake import Refusal, basic_password, security_check
from gateways.ocpp.tls import PLAIN, PeerCertificate, server_context
from schemas import subjects
from schemas.records import StationRecord, encode
from tests.conftest import Stack, running, stack_settings
from tests.support import RawStation, eventually, stored, stored_frames

PASSWORD = "correct-horse-battery"
BOOT = {"chargePointVendor": "evbus-tests", "chargePointModel": "TLS"}


# --- pure checks -------------------------------------------------------------------------------


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_password_is_for_the_station_id_even_with_colons_in_it() -> None:
    assert basic_password(_header("CP01", "s3:cret"), "CP01") == "s3:cret"
    assert basic_password(_header("a:b", "pw"), "a:b") == "pw"  # 2.0.1 ids may hold ':'
    for header in (None, "", "Bearer x", "Basic !!!"):
        refusal = basic_password(header, "CP01")
        assert isinstance(refusal, Refusal)
        assert refusal.status == HTTPStatus.UNAUTHORIZED
    wrong_user = basic_password(_header("CP02", "pw"), "CP01")
    assert isinstance(wrong_user, Refusal)
    assert wrong_user.reason == "wrong username or password"


TLS = PeerCertificate(tls=True)


@pytest.mark.parametrize(
    ("profile", "peer", "expected"),
    [
        (0, PLAIN, "open"),
        (1, PLAIN, "password"),
        (1, TLS, "password"),
        (2, TLS, "password"),
        (2, PLAIN, ("auth_failed", HTTPStatus.FORBIDDEN)),
        (3, PLAIN, ("certificate_failed", HTTPStatus.FORBIDDEN)),
        (3, TLS, ("certificate_failed", HTTPStatus.FORBIDDEN)),
        (3, PeerCertificate(tls=True, common_names=("CP02",)), ("certificate_failed", HTTPStatus.FORBIDDEN)),
        (3, PeerCertificate(tls=True, common_names=("CP01",)), "open"),
    ],
)
def test_what_each_profile_asks_of_a_connection(profile: int, peer: PeerCertificate, expected: object) -> None:
    found = security_check("CP01", profile, peer)
    if isinstance(expected, tuple):
        assert isinstance(found, Refusal)
        assert (found.category, found.status) == expected
    else:
        assert found == expected


def test_the_default_profile_follows_the_password() -> None:
    assert StationRecord().profile == 0
    assert StationRecord(password_hash="x").profile == 1
    assert StationRecord(password_hash="x", security_profile=3).profile == 3
    assert msgspec.json.decode(encode(StationRecord(security_profile=2)), type=StationRecord).security_profile == 2
    assert b"securityProfile" not in encode(StationRecord(password_hash="x"))  # the default is not written


def test_tls_is_1_2_or_newer_and_client_certificates_are_optional(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    context = server_context(Settings(ocpp_tls_port=0, ocpp_tls_cert=cert))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # no client CA: no client certificates asked for
    mutual = server_context(Settings(ocpp_tls_port=0, ocpp_tls_cert=cert, ocpp_tls_client_ca=tmp_path / "ca.pem"))
    assert mutual.verify_mode == ssl.CERT_OPTIONAL
    with pytest.raises(SettingsError, match="EVBUS_OCPP_TLS_CERT"):
        server_context(Settings(ocpp_tls_port=0))
    with pytest.raises(SettingsError, match="cannot load"):
        server_context(Settings(ocpp_tls_port=0, ocpp_tls_cert=tmp_path / "missing.pem"))


# --- a gateway with both listeners -------------------------------------------------------------


class Pki:
    """A CA that signs the gateway's certificate and the stations'."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.server_pem = directory / "server.pem"
        self.ca_pem = directory / "stations-ca.pem"
        self.ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(self.server_pem))
        self.ca.cert_pem.write_to_path(str(self.ca_pem))

    def client(self, common_name: str | None = None, ca: trustme.CA | None = None) -> ssl.SSLContext:
        """A station's TLS context: trusts the gateway; with a certificate of ``common_name`` if given."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if common_name is not None:
            (ca or self.ca).issue_cert("station.test", common_name=common_name).configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_settings(nats_url: str, data_dir: Path, pki: Pki) -> Settings:
    return stack_settings(nats_url, data_dir).with_(
        ocpp_tls_port=0, ocpp_tls_cert=pki.server_pem, ocpp_tls_client_ca=pki.ca_pem
    )


@pytest.fixture(scope="module")
async def tls_stack(nats_url: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running(tls_settings(nats_url, tmp_path_factory.mktemp("tls"), pki)) as stack:
        yield stack


def wss(stack: Stack, station: str) -> str:
    assert stack.gateway is not None
    assert stack.gateway.tls_port is not None
    return f"wss://127.0.0.1:{stack.gateway.tls_port}/ocpp/{station}"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": _header(user, password)}


@contextlib.asynccontextmanager
async def connect(url: str, **kwargs: Any) -> AsyncIterator[RawStation]:
    async with websockets.connect(url, subprotocols=["ocpp1.6"], compression=None, **kwargs) as ws:  # type: ignore[list-item]
        yield RawStation(ws)


async def refused(url: str, **kwargs: Any) -> int:
    """The HTTP status the gateway refused the handshake with."""
    with pytest.raises(InvalidStatus) as refusal:
        async with connect(url, **kwargs):
            pass
    return refusal.value.response.status_code


async def register(stack: Stack, station: str, record: StationRecord) -> None:
    assert stack.gateway is not None
    registry = await stack.js.key_value(subjects.BUCKET_REGISTRY)
    await registry.put(subjects.kv_key(station), encode(record))

    async def mirrored() -> bool:
        return stack.gateway.registry.get(station) == record  # type: ignore[union-attr]

    await eventually(mirrored)


async def boots(cp: RawStation) -> bool:
    answer = await cp.call("BootNotification", BOOT)
    return answer[0] == 3 and answer[2]["status"] == "Accepted"


async def security_events(stack: Stack, category: str, station: str) -> list[dict[str, Any]]:
    messages = await stored(stack.js, subjects.security_event(category), subjects.STREAM_EVENTS)
    events = [msgspec.json.decode(m.data) for m in messages]
    return [e for e in events if e.get("station") == station]


async def recorded(stack: Stack, category: str, station: str, count: int = 1) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]]:
        found = await security_events(stack, category, station)
        return found if len(found) >= count else []

    return await eventually(enough)


# --- profile 2: TLS + Basic auth --------------------------------------------------------------


async def test_profile_2_connects_over_wss_with_its_password(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD), security_profile=2))
    async with connect(wss(tls_stack, station), ssl=pki.client(), additional_headers=basic(station, PASSWORD)) as cp:
        assert await boots(cp)


async def test_profile_2_with_a_wrong_password_is_refused_and_recorded(
    tls_stack: Stack, pki: Pki, station: str
) -> None:
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD), security_profile=2))
    wrong = basic(station, "not-the-password!")
    assert await refused(wss(tls_stack, station), ssl=pki.client(), additional_headers=wrong) == 401
    assert await refused(wss(tls_stack, station), ssl=pki.client()) == 401
    events = await recorded(tls_stack, "auth_failed", station, 2)
    assert all(e["remoteAddress"].startswith("127.0.0.1:") for e in events)
    assert {e["detail"] for e in events} == {"wrong username or password", "no Basic credentials"}
    rejected = await eventually(lambda: stored(tls_stack.js, subjects.ocpp_conn(station, "rejected")))
    assert "auth_failed" in msgspec.json.decode(rejected[0].data)["reason"]


async def test_profile_2_over_plain_ws_is_refused_even_with_its_password(tls_stack: Stack, station: str) -> None:
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD), security_profile=2))
    assert await refused(tls_stack.url(station), additional_headers=basic(station, PASSWORD)) == 403
    [event] = await recorded(tls_stack, "auth_failed", station)
    assert "needs TLS" in event["detail"]
    assert event["remoteAddress"].startswith("127.0.0.1:")


# --- profile 3: mutual TLS --------------------------------------------------------------------


async def test_profile_3_connects_with_a_certificate_of_its_id_and_no_password(
    tls_stack: Stack, pki: Pki, station: str
) -> None:
    await register(tls_stack, station, StationRecord(security_profile=3))
    async with connect(wss(tls_stack, station), ssl=pki.client(common_name=station)) as cp:
        assert await boots(cp)


async def test_profile_3_with_another_stations_certificate_is_refused(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(security_profile=3))
    other = pki.client(common_name=station + "-other")
    assert await refused(wss(tls_stack, station), ssl=other, additional_headers=basic(station, PASSWORD)) == 403
    [event] = await recorded(tls_stack, "certificate_failed", station)
    assert event["detail"] == f"client certificate CN {station + '-other'!r} is not the station id"
    assert event["remoteAddress"].startswith("127.0.0.1:")
    rejected = await eventually(lambda: stored(tls_stack.js, subjects.ocpp_conn(station, "rejected")))
    assert "certificate_failed" in msgspec.json.decode(rejected[0].data)["reason"]


async def test_profile_3_without_a_client_certificate_or_tls_is_refused(
    tls_stack: Stack, pki: Pki, station: str
) -> None:
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD), security_profile=3))
    assert await refused(wss(tls_stack, station), ssl=pki.client(), additional_headers=basic(station, PASSWORD)) == 403
    assert await refused(tls_stack.url(station), additional_headers=basic(station, PASSWORD)) == 403
    events = await recorded(tls_stack, "certificate_failed", station, 2)
    assert sorted(e["detail"] for e in events) == [
        "security profile 3 needs TLS (wss://) with a client certificate",
        "security profile 3 needs a client certificate",
    ]


async def test_a_certificate_of_an_unknown_ca_fails_the_tls_handshake(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(security_profile=3))
    stranger = pki.client(common_name=station, ca=trustme.CA())
    with pytest.raises((ssl.SSLError, ConnectionError, websockets.exceptions.InvalidMessage, EOFError)):
        async with connect(wss(tls_stack, station), ssl=stranger) as cp:
            await cp.call("Heartbeat", {})  # TLS 1.3: the server's alert arrives after the client's handshake


# --- profile 1, profile 0 and unknown stations on both listeners ------------------------------


async def test_profile_1_is_unchanged_and_works_over_wss_too(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD)))
    async with connect(tls_stack.url(station), additional_headers=basic(station, PASSWORD)) as cp:
        assert await boots(cp)
    async with connect(wss(tls_stack, station), ssl=pki.client(), additional_headers=basic(station, PASSWORD)) as cp:
        assert await boots(cp)
    assert await refused(tls_stack.url(station), additional_headers=basic(station, "wrong-password-1234")) == 401
    assert await refused(tls_stack.url(station)) == 401


async def test_open_and_unknown_stations_connect_on_either_listener(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(description="no password, profile 0"))
    for name in (station, station + "-unknown"):
        async with connect(tls_stack.url(name)) as cp:
            assert await boots(cp)
        async with connect(wss(tls_stack, name), ssl=pki.client(common_name="whatever")) as cp:
            assert await boots(cp)


async def test_unknown_stations_are_refused_on_the_tls_listener_when_so_configured(
    nats_url: str, pki: Pki, tmp_path: Path, station: str
) -> None:
    async with running(
        tls_settings(nats_url, tmp_path, pki).with_(unknown_stations="reject"), processor=False
    ) as stack:
        assert await refused(wss(stack, station), ssl=pki.client(common_name=station)) == 404
        assert await refused(stack.url(station)) == 404


# --- the Authorization header is never recorded -----------------------------------------------


async def test_the_authorization_header_is_never_recorded(
    tls_stack: Stack, pki: Pki, station: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs every handshake header at DEBUG
    caplog.set_level(logging.DEBUG, logger="websockets.server")  # evbus's CLI (tested in-process) quiets it
    await register(tls_stack, station, StationRecord(password_hash=hash_password(PASSWORD), security_profile=2))
    wrong = "wrong-password-xyz"
    async with connect(wss(tls_stack, station), ssl=pki.client(), additional_headers=basic(station, PASSWORD)) as cp:
        assert await boots(cp)
    assert await refused(wss(tls_stack, station), ssl=pki.client(), additional_headers=basic(station, wrong)) == 401
    assert await refused(tls_stack.url(station), additional_headers=basic(station, PASSWORD)) == 403
    await recorded(tls_stack, "auth_failed", station, 2)

    secrets_ = [PASSWORD, wrong, _header(station, PASSWORD), _header(station, wrong)]
    secrets_ += [s.split(" ", 1)[1] for s in secrets_[2:]]
    frames = await eventually(lambda: stored_frames(tls_stack.js, station))
    events = await security_events(tls_stack, "auth_failed", station)
    everything = b"".join(m.data + repr(m.headers).encode() for m in frames) + repr(events).encode()
    assert any(m.subject.endswith(".conn.rejected") for m in frames)
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client"))
    for secret in secrets_:
        assert secret.encode() not in everything
        assert secret not in ours
    assert "Authorization: [redacted]" in ours  # the header line was logged, its value was not
