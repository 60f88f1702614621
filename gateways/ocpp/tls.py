"""The ``wss://`` listener's TLS: the server context (security profiles 2 and 3) and the client
certificate a station presented (profile 3).

TLS 1.2 or newer. For TLS 1.2 only the AES-GCM suites OCPP names (2.0.1 A00.FR.3xx, the 1.6
security whitepaper): ECDHE with ECDSA or RSA keys first, then the RSA key exchange suites some
older charge points still need; TLS 1.3 uses OpenSSL's suites. With ``EVBUS_OCPP_TLS_CLIENT_CA``
the server asks every station for a certificate but does not insist (``CERT_OPTIONAL``): a
profile-2 station connects without one, and the handshake refuses a profile-3 station that has
none. A certificate that does not chain to that CA fails the TLS handshake itself.
"""

from __future__ import annotations

import ssl
from typing import Any, Final

from evbus.settings import Settings, SettingsError

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
