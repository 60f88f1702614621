"""Failed TLS handshakes on the ``wss://`` listener (gateways/ocpp/tls.py): each is refused and
recorded as an ``events.security.tls_failed`` event with the client's address, and the stations
beside it on the same listener go on being answered.

Real parts: a gateway with a ``wss://`` listener on a real nats-server, trustme certificates and
real TLS clients. Each test's client connects from its own loopback address (127.0.0.N), so its
event can be told from the others' and is not held back by their per-address throttle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import time
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trustme
from websockets.exceptions import InvalidMessage

from gateways.ocpp.tls import tls_failure
from schemas import subjects
from schemas.records import StationRecord
from tests.conftest import Stack, running
from tests.gateways.ocpp.test_security_profiles import Pki, boots, connect, register, tls_settings, wss
from tests.support import RawStation, eventually, stored

HANDSHAKE_TIMEOUT = 1.0
# what a TLS client may see when the server refuses its handshake (TLS 1.3: only once it reads)
REFUSED = (ssl.SSLError, ConnectionError, InvalidMessage, EOFError)


# --- what a failure is recorded as ------------------------------------------------------------------


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    error.verify_message = message
    return error


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] ...")
    error.reason = reason
    return error


@pytest.mark.parametrize(
    ("exc", "detail", "severity"),
    [
        (_verify_error("certificate has expired"), "CERTIFICATE_VERIFY_FAILED: certificate has expired", "warning"),
        (_ssl_error("UNSUPPORTED_PROTOCOL"), "UNSUPPORTED_PROTOCOL", "warning"),
        (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), "TLSV1_ALERT_UNKNOWN_CA", "warning"),
        (TimeoutError(), "no TLS handshake within 2.5 s", "warning"),
        (ConnectionResetError(), "the client closed the connection during the TLS handshake", "info"),
        (ssl.SSLEOFError(8, "EOF"), "the client closed the connection during the TLS handshake", "info"),
        (RuntimeError("odd"), "RuntimeError: odd", "warning"),
    ],
)
def test_what_a_failed_handshake_is_recorded_as(exc: BaseException, detail: str, severity: str) -> None:
    assert tls_failure(exc, 2.5) == (detail, severity)


# --- on a real listener -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def tls_stack(nats_url: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    settings = tls_settings(nats_url, tmp_path_factory.mktemp("tls-failures"), pki).with_(
        ocpp_tls_handshake_timeout=HANDSHAKE_TIMEOUT, gateway_id=f"tls-{uuid.uuid4().hex[:8]}"
    )
    async with running(settings) as stack:
        yield stack


def tls_port(stack: Stack) -> int:
    assert stack.gateway is not None
    assert stack.gateway.tls_port is not None
    return stack.gateway.tls_port


async def connected_from(source: str, stack: Stack) -> tuple[socket.socket, str]:
    """A TCP connection to the ``wss://`` listener from ``source`` (a loopback address), and its
    address as the gateway sees it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", tls_port(stack)))
    host, port = sock.getsockname()
    return sock, f"{host}:{port}"


async def tls_failed(stack: Stack, remote: str) -> dict[str, Any]:
    """The ``tls_failed`` event of the connection from ``remote``, once it is stored."""
    assert stack.gateway is not None
    gateway = stack.gateway.id

    async def found() -> list[dict[str, Any]]:
        messages = await stored(stack.js, subjects.security_event("tls_failed"), subjects.STREAM_EVENTS)
        events = [msgspec.json.decode(m.data) for m in messages]
        return [e for e in events if e.get("gateway") == gateway and e.get("remoteAddress") == remote]

    [event] = await eventually(found)
    assert event["category"] == "tls_failed"
    assert "station" not in event  # no station id yet: the websocket handshake never began
    assert event.get("severity", "warning") == "warning"  # the body omits the default severity
    return event


@contextlib.asynccontextmanager
async def neighbour(stack: Stack, pki: Pki) -> AsyncIterator[RawStation]:
    """A profile-3 station connected to the same listener (mutual TLS, its certificate's CN is its id)."""
    station = f"CP-{uuid.uuid4().hex[:10]}"
    await register(stack, station, StationRecord(security_profile=3))
    async with connect(wss(stack, station), ssl=pki.client(common_name=station)) as cp:
        assert await boots(cp)
        yield cp


async def still_answered(stack: Stack, pki: Pki, cp: RawStation) -> None:
    """The neighbour that was connected before the failure is answered, and a new one connects."""
    answer = await cp.call("Heartbeat", {})
    assert answer[0] == 3
    assert "currentTime" in answer[2]
    async with neighbour(stack, pki):
        pass


async def test_a_client_certificate_of_an_unknown_ca_is_recorded(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(security_profile=3))
    stranger = pki.client(common_name=station, ca=trustme.CA())
    async with neighbour(tls_stack, pki) as good:
        sock, remote = await connected_from("127.0.0.2", tls_stack)
        with pytest.raises(REFUSED):
            async with connect(wss(tls_stack, station), ssl=stranger, sock=sock) as cp:
                await cp.call("Heartbeat", {})  # TLS 1.3: the server's alert arrives after the client's handshake
        event = await tls_failed(tls_stack, remote)
        assert event["detail"] == "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"
        await still_answered(tls_stack, pki, good)


async def test_an_expired_client_certificate_is_recorded(tls_stack: Stack, pki: Pki, station: str) -> None:
    await register(tls_stack, station, StationRecord(security_profile=3))
    expired = pki.client()
    pki.ca.issue_cert("station.test", common_name=station, not_after=dt.datetime(2020, 1, 1)).configure_cert(expired)
    async with neighbour(tls_stack, pki) as good:
        sock, remote = await connected_from("127.0.0.3", tls_stack)
        with pytest.raises(REFUSED):
            async with connect(wss(tls_stack, station), ssl=expired, sock=sock) as cp:
                await cp.call("Heartbeat", {})
        event = await tls_failed(tls_stack, remote)
        assert event["detail"] == "CERTIFICATE_VERIFY_FAILED: certificate has expired"
        await still_answered(tls_stack, pki, good)


def tls_1_1_only(pki: Pki) -> ssl.SSLContext:
    """A client that offers nothing newer than TLS 1.1 (OpenSSL 3 builds it at security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki.ca.configure_trust(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 is deprecated: the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # TLS 1.1 signs with MD5+SHA-1: OpenSSL 3 allows it at level 0 only
    return context


async def test_a_client_offering_only_tls_1_1_is_recorded(tls_stack: Stack, pki: Pki, station: str) -> None:
    async with neighbour(tls_stack, pki) as good:
        sock, remote = await connected_from("127.0.0.4", tls_stack)
        with pytest.raises(REFUSED):
            async with connect(wss(tls_stack, station), ssl=tls_1_1_only(pki), sock=sock):
                pass
        event = await tls_failed(tls_stack, remote)
        assert event["detail"] == "UNSUPPORTED_PROTOCOL"
        await still_answered(tls_stack, pki, good)


async def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closes ``sock`` (at most ``within``)."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        while await asyncio.wait_for(loop.sock_recv(sock, 4096), within):
            pass  # e.g. an alert
    return time.monotonic() - started


async def speak_http(stack: Stack, source: str, path: str = "/") -> str:
    """Send a plain HTTP request to the TLS port from ``source``; the client's address once the
    server has closed the connection."""
    sock, remote = await connected_from(source, stack)
    with sock:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n"
        await asyncio.get_running_loop().sock_sendall(sock, request.encode())
        await closed_by_server(sock, within=5)
    return remote


async def test_plain_http_to_the_tls_port_is_recorded(tls_stack: Stack, pki: Pki, station: str) -> None:
    async with neighbour(tls_stack, pki) as good:
        remote = await speak_http(tls_stack, "127.0.0.5", f"/ocpp/{station}")
        event = await tls_failed(tls_stack, remote)
        assert event["detail"] == "HTTP_REQUEST"
        await still_answered(tls_stack, pki, good)


async def test_a_client_that_never_speaks_is_cut_off_and_recorded(tls_stack: Stack, pki: Pki) -> None:
    async with neighbour(tls_stack, pki) as good:
        sock, remote = await connected_from("127.0.0.6", tls_stack)
        with sock:
            waited = await closed_by_server(sock, within=HANDSHAKE_TIMEOUT + 5)
        assert waited >= HANDSHAKE_TIMEOUT * 0.8
        event = await tls_failed(tls_stack, remote)
        assert event["detail"] == f"no TLS handshake within {HANDSHAKE_TIMEOUT:g} s"
        await still_answered(tls_stack, pki, good)


async def test_many_failed_handshakes_from_one_address_are_one_event(tls_stack: Stack, pki: Pki) -> None:
    assert tls_stack.gateway is not None
    gateway = tls_stack.gateway.id
    for _ in range(5):
        await speak_http(tls_stack, "127.0.0.7")
    await tls_failed(tls_stack, await speak_http(tls_stack, "127.0.0.8"))  # a later failure from elsewhere

    messages = await stored(tls_stack.js, subjects.security_event("tls_failed"), subjects.STREAM_EVENTS)
    events = [msgspec.json.decode(m.data) for m in messages]
    flood = [e for e in events if e["gateway"] == gateway and e["remoteAddress"].startswith("127.0.0.7:")]
    assert len(flood) == 1  # the next, a minute later at the earliest, counts the ones held back
    async with neighbour(tls_stack, pki):
        pass


async def test_the_handshake_timeout_must_be_positive(nats_url: str, pki: Pki, tmp_path: Path) -> None:
    settings = tls_settings(nats_url, tmp_path, pki).with_(ocpp_tls_handshake_timeout=0)
    with pytest.raises(ValueError, match="EVBUS_OCPP_TLS_HANDSHAKE_TIMEOUT"):
        async with running(settings, processor=False):
            pass
