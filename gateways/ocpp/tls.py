"""The ``wss://`` listener's TLS: the server context (security profiles 2 and 3), the handshake,
and the client certificate a station presented (profile 3).

TLS 1.2 or newer. For TLS 1.2 only the AES-GCM suites OCPP names (2.0.1 A00.FR.3xx, the 1.6
security whitepaper): ECDHE with ECDSA or RSA keys first, then the RSA key exchange suites some
older charge points still need; TLS 1.3 uses OpenSSL's suites. With ``EVBUS_OCPP_TLS_CLIENT_CA``
the server asks every station for a certificate but does not insist (``CERT_OPTIONAL``): a
profile-2 station connects without one, and the handshake refuses a profile-3 station that has
none. A certificate that does not chain to that CA fails the TLS handshake itself.

The handshake is evbus's, not asyncio's: with ``ssl=`` on the listening server asyncio would refuse a
client (unknown CA, expired certificate, TLS < 1.2, no handshake in time) inside its accept and tell
no one outside debug mode. So the ``wss://`` listener accepts plain TCP, and :class:`TlsListener`
does each handshake itself with ``loop.connect_accepted_socket(..., ssl=)``: a station that passes
gets the same TLS transport as before (nothing of evbus in its data path); a failure is reported,
with the client's address, to the gateway, which records it as a ``tls_failed`` security event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, NamedTuple, cast

from websockets.asyncio.server import ServerConnection

from evbus.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# seconds a TLS close may take: what websockets passed to asyncio (its close_timeout) for a listener with ssl=
SSL_SHUTDOWN_TIMEOUT_S: Final = 10.0

TLS12_CIPHERS: Final = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)


def server_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of the ``wss://`` listener, from ``EVBUS_OCPP_TLS_*``."""
    if settings.ocpp_tls_cert is None:
        raise SettingsError("EVBUS_OCPP_TLS_PORT is set: EVBUS_OCPP_TLS_CERT must name the server certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(settings.ocpp_tls_cert, settings.ocpp_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"EVBUS_OCPP_TLS_CERT/EVBUS_OCPP_TLS_KEY: cannot load {settings.ocpp_tls_cert}: {exc}"
        ) from exc
    if settings.ocpp_tls_client_ca is not None:
        try:
            context.load_verify_locations(cafile=settings.ocpp_tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"EVBUS_OCPP_TLS_CLIENT_CA: cannot load {settings.ocpp_tls_client_ca}: {exc}") from exc
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class PeerCertificate:
    """What the gateway knows of a station's TLS connection: whether it is TLS at all, and the
    subject common names of the client certificate the server verified (none: no certificate)."""

    __slots__ = ("common_names", "tls")

    def __init__(self, tls: bool, common_names: tuple[str, ...] = ()) -> None:
        self.tls = tls
        self.common_names = common_names

    @property
    def verified(self) -> bool:
        return bool(self.common_names)


PLAIN: Final = PeerCertificate(tls=False)


def peer_certificate(transport: Any) -> PeerCertificate:
    """The client certificate of a connection, read from its transport's ``ssl_object``.

    ``getpeercert()`` answers only for a certificate the server verified against
    ``EVBUS_OCPP_TLS_CLIENT_CA``: None or ``{}`` without one.
    """
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return PLAIN
    cert = ssl_object.getpeercert()
    if not cert:
        return PeerCertificate(tls=True)
    names = tuple(
        value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName" and isinstance(value, str)
    )
    return PeerCertificate(tls=True, common_names=names)


# --- the handshake ---------------------------------------------------------------------------------


class TlsFailure(NamedTuple):
    """Why a TLS handshake failed, as a security event's detail and severity."""

    detail: str
    severity: Literal["info", "warning"]


def tls_failure(exc: BaseException, timeout: float) -> TlsFailure:
    """What a failed server-side handshake raised, said for the record: OpenSSL's reason
    (``CERTIFICATE_VERIFY_FAILED: certificate has expired``, ``UNSUPPORTED_PROTOCOL``, ``HTTP_REQUEST``,
    ``TLSV1_ALERT_UNKNOWN_CA`` when the client refused our certificate), a timeout, or a client that
    hung up (severity ``info``: port scanners and TCP health checks do that too)."""
    if isinstance(exc, TimeoutError):
        return TlsFailure(f"no TLS handshake within {timeout:g} s", "warning")
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionResetError | BrokenPipeError):
        return TlsFailure("the client closed the connection during the TLS handshake", "info")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure(f"{exc.reason}: {exc.verify_message}", "warning")
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return TlsFailure(str(exc.reason), "warning")
    return TlsFailure(f"{type(exc).__name__}: {exc}", "warning")


Failed = Callable[[Any, TlsFailure], Awaitable[None]]
"""Told of each failed handshake: the client's address as its socket gives it, and why."""


class TlsListener:
    """The TLS handshakes of the ``wss://`` listener's connections.

    websockets builds each connection with ``create_connection`` (:meth:`connection_factory`): here an
    :class:`_Acceptor` around its ServerConnection. The acceptor takes the accepted socket from its
    plain transport (a duplicate of its descriptor, before the transport has read anything; the
    plain transport is then dropped) and hands it to ``loop.connect_accepted_socket`` with the TLS
    context, which calls the ServerConnection's ``connection_made`` with the TLS transport once the
    handshake is done, exactly as a listener with ``ssl=`` would. A handshake that fails or takes
    longer than ``handshake_timeout`` ends the connection and is reported to ``failed``.
    """

    def __init__(self, context: ssl.SSLContext, handshake_timeout: float, failed: Failed) -> None:
        if handshake_timeout <= 0:
            raise SettingsError("EVBUS_OCPP_TLS_HANDSHAKE_TIMEOUT must be more than 0 seconds")
        self.context = context
        self.handshake_timeout = handshake_timeout
        self._failed = failed
        self._handshakes: set[asyncio.Task[None]] = set()
        self._closed = False

    def connection_factory(self) -> type[ServerConnection]:
        """websockets' ``create_connection`` hook. websockets calls it as it would the class and
        hands what it returns to asyncio as the connection's protocol; that is the acceptor."""

        def create(*args: Any, **kwargs: Any) -> _Acceptor:
            return _Acceptor(self, ServerConnection(*args, **kwargs))

        return cast("type[ServerConnection]", create)

    def accept(self, plain: asyncio.Transport, connection: ServerConnection) -> None:
        """Start the TLS handshake of a connection just accepted (from ``connection_made``, before
        the plain transport reads: both loops start reading only once it returns)."""
        peer = plain.get_extra_info("peername")
        if self._closed:
            plain.abort()
            return
        try:
            sock = socket.socket(fileno=os.dup(plain.get_extra_info("socket").fileno()))
        except OSError as exc:  # out of descriptors: the client sees a closed connection
            log.warning("TLS connection from %s dropped: %s", peer, exc)
            plain.abort()
            return
        plain.abort()  # closes its own descriptor only: the connection lives on in `sock`
        handshake = asyncio.get_running_loop().create_task(self._handshake(sock, peer, connection))
        self._handshakes.add(handshake)
        handshake.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, peer: Any, connection: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.handshake_timeout):
                # on failure or cancellation the loop closes the transport and with it the socket;
                # the loop's own handshake timer is set behind ours, so a silent client is a TimeoutError
                await loop.connect_accepted_socket(
                    lambda: connection,
                    sock,
                    ssl=self.context,
                    ssl_handshake_timeout=self.handshake_timeout + 1,
                    ssl_shutdown_timeout=SSL_SHUTDOWN_TIMEOUT_S,
                )
        except Exception as exc:
            await self._failed(peer, tls_failure(exc, self.handshake_timeout))

    def close(self) -> None:
        """Accept no more connections and cancel the handshakes under way."""
        self._closed = True
        for handshake in self._handshakes:
            handshake.cancel()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._handshakes, return_exceptions=True)


class _Acceptor(asyncio.Protocol):
    """The first protocol of a ``wss://`` connection: it hands the socket to the TLS handshake and
    is out of the way before the first byte is read."""

    __slots__ = ("_connection", "_listener")

    def __init__(self, listener: TlsListener, connection: ServerConnection) -> None:
        self._listener = listener
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._listener.accept(cast(asyncio.Transport, transport), self._connection)
