"""The OCPP gateway: websockets in, JetStream out. It frames, authenticates, records and pairs.

Every frame a station sends is stored in the ``OCPP`` stream (ack awaited) before the next one is
read, so the stream holds each station's frames in wire order. Everything a station receives comes
from its ``ocpp.{station}.out.>`` subject: the processors' answers and CALLs, and the gateway's
own CALLERRORs to malformed frames, which take the same path. The gateway never decides how a
station is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final, Literal

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header
from nats.js.kv import KV_DEL, KV_OP, KeyValue
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from evbus.clock import Clock, rfc3339, utc_now
from evbus.kv import KvMirror
from evbus.passwords import PasswordVerifier
from evbus.publishing import NotStored, StorageUnavailable, Store, publish_until_stored
from evbus.settings import Settings
from gateways.ocpp.connection import StationConnection
from gateways.ocpp.connection_log import ConnectionLog
from gateways.ocpp.handshake import (
    RedactCredentials,
    Refusal,
    basic_password,
    offered_subprotocols,
    security_check,
    select_protocol,
    station_id_from_path,
)
from gateways.ocpp.limits import CLOSE_POLICY_VIOLATION, ConnectionTable, HandshakeLimits, address_of
from gateways.ocpp.tls import TlsFailure, TlsListener, peer_certificate, server_context
from schemas import ocpp_j, subjects
from schemas.commands import H_REDACTED, H_TIMEOUT, timeout_of
from schemas.ocpp_j import PROTOCOLS, Call, CallError, CallResult, Malformed, MessageType, Protocol
from schemas.records import ConnectionEvent, Presence, SecurityEvent, StationRecord, encode
from schemas.streams import PRESENCE_TTL_S
from schemas.subjects import Direction

log = logging.getLogger(__name__)

PUBLISH_BUDGET_S: Final = 10.0  # after this long without an ack, the frame is refused
PRESENCE_CHUNK: Final = 1000  # presence refreshes in flight at once
HARD_FRAME_LIMIT: Final = 1_000_000  # NATS max_payload: frames above it cannot even be recorded
# Connections the kernel holds for us until we accept them; it caps this at net.core.somaxconn (4096
# by default since Linux 5.4). asyncio's default of 100 overflows when thousands of stations
# reconnect at once: the kernel then drops their handshakes and they retry only after 1, 3, 7 … s.
LISTEN_BACKLOG: Final = 65535


def default_gateway_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class OcppGateway:
    def __init__(
        self,
        nc: NATS,
        settings: Settings,
        *,
        registry: KvMirror[StationRecord],
        presence: KeyValue,
        gateway_id: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.nc = nc
        self.store = Store(nc)
        self.settings = settings
        self.id = gateway_id or settings.gateway_id or default_gateway_id()
        self.registry = registry
        self.presence = presence  # the KV bucket; writes and deletes go through self.store (one ack subscription)
        self.clock = clock
        self.verifier = PasswordVerifier()
        self.connections: dict[str, StationConnection] = {}
        self.connection_log = ConnectionLog(log)
        # message rate per socket, handshake rate per address (gateways/ocpp/limits.py)
        self.station_limits: ConnectionTable[StationConnection] = ConnectionTable(
            settings.station_rate, settings.station_burst, alive=lambda c: self.connections.get(c.station) is c
        )
        self.handshake_limits = HandshakeLimits(settings.handshake_rate, settings.handshake_burst)
        self._closing: set[asyncio.Task[None]] = set()  # sockets closed for their message rate
        # connection ids: random per gateway process, counted per socket (no OS entropy per connection)
        self._connection_prefix = secrets.token_hex(6)
        self._connection_numbers = itertools.count(1)
        self._server: Server | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._control: Subscription | None = None
        self._calls: Subscription | None = None
        self.port: int = 0
        self._tls_server: Server | None = None
        self._tls: TlsListener | None = None  # the wss:// listener's TLS handshakes
        self.tls_port: int | None = None  # the wss:// listener's, when EVBUS_OCPP_TLS_PORT is set

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> int:
        await self.store.start()
        limit = min(max(self.settings.max_frame_bytes * 4, 1 << 20), HARD_FRAME_LIMIT)
        _redact_handshake_logs()
        options: dict[str, Any] = {
            "subprotocols": list(PROTOCOLS),
            "process_request": self._process_request,
            "backlog": LISTEN_BACKLOG,
            "max_size": limit,
            "compression": None,
            "ping_interval": self.settings.ws_ping_interval or None,
            "ping_timeout": self.settings.ws_ping_interval or None,
            "server_header": "evbus",
        }
        if self.settings.ocpp_tls_port is not None:
            context = server_context(self.settings)
            self._tls = TlsListener(context, self.settings.ocpp_tls_handshake_timeout, self._tls_failed)
        self._server = await serve(self._serve, self.settings.ocpp_host, self.settings.ocpp_port, **options)
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        if self._tls is not None:
            # plain TCP: the TLS handshake is the TlsListener's, so that its failures are recorded
            self._tls_server = await serve(
                self._serve,
                self.settings.ocpp_host,
                self.settings.ocpp_tls_port,
                create_connection=self._tls.connection_factory(),
                **options,
            )
            self.tls_port = int(next(iter(self._tls_server.sockets)).getsockname()[1])
            log.info(
                "OCPP gateway %s listening on wss://%s:%d/ocpp/{stationId}",
                self.id,
                self.settings.ocpp_host,
                self.tls_port,
            )
        self._refresher = asyncio.create_task(self._refresh_presence(), name="presence")
        self._control = await self.nc.subscribe(subjects.gateway_control(self.id, "disconnect"), cb=self._disconnect)
        self._calls = await self.nc.subscribe(subjects.gateway_control(self.id, "call"), cb=self._direct_call)
        log.info(
            "OCPP gateway %s listening on ws://%s:%d/ocpp/{stationId}", self.id, self.settings.ocpp_host, self.port
        )
        return self.port

    async def stop(self) -> None:
        for control in (self._control, self._calls):
            if control:
                with contextlib.suppress(Exception):
                    await control.unsubscribe()
        if self._refresher:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._tls:
            self._tls.close()  # handshakes under way are cancelled, so none becomes a connection now
        for server in (self._server, self._tls_server):
            if server:
                server.close(close_connections=True)
                await server.wait_closed()
        if self._tls:
            await self._tls.wait_closed()
        await self.store.stop()

    # --- handshake ------------------------------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        remote = _address(ws)
        refused = self.handshake_limits.admit(address_of(remote), time.monotonic())
        if refused is not None:
            if refused.event is not None:
                await self._security("rate_limited", None, remote, refused.event)
            response = _refuse(ws, HTTPStatus.TOO_MANY_REQUESTS, "too many handshakes from this address, retry later")
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        station = station_id_from_path(request.path)
        if isinstance(station, Refusal):
            await self._security(station.category, None, remote, station.reason)
            return _refuse(ws, station.status, station.reason)
        offered = offered_subprotocols(request.headers.get_all("Sec-WebSocket-Protocol"))
        if select_protocol(offered) is None:
            reason = f"no supported subprotocol in {offered or 'the request'}; evbus speaks {', '.join(PROTOCOLS)}"
            await self._rejected(station, remote, "unsupported_protocol", reason)
            return _refuse(ws, HTTPStatus.BAD_REQUEST, reason)
        record = self.registry.get(station)
        if record is None and self.settings.unknown_stations == "reject":
            await self._rejected(station, remote, "unknown_station", "station is not registered")
            return _refuse(ws, HTTPStatus.NOT_FOUND, "unknown station")
        if record is not None:
            refusal = await self._authenticate(ws, request, station, record)
            if refusal is not None:
                await self._rejected(station, remote, refusal.category, refusal.reason)
                if refusal.status == HTTPStatus.UNAUTHORIZED:
                    return _unauthorized(ws)
                return _refuse(ws, refusal.status, refusal.reason)
        return None

    async def _authenticate(
        self, ws: ServerConnection, request: Request, station: str, record: StationRecord
    ) -> Refusal | None:
        """The station's security profile: TLS and its client certificate, then its Basic password.
        The ``Authorization`` header is read here and nowhere else; it is never recorded."""
        check = security_check(station, record.profile, peer_certificate(ws.transport))
        if isinstance(check, Refusal):
            return check
        if check == "open":
            return None
        if not record.password_hash:
            reason = f"security profile {record.profile} without a password"
            return Refusal(HTTPStatus.UNAUTHORIZED, reason, "auth_failed")
        password = basic_password(request.headers.get("Authorization"), station)
        if isinstance(password, Refusal):
            return password
        if not await self.verifier.verify(station, record.password_hash, password):
            return Refusal(HTTPStatus.UNAUTHORIZED, "wrong username or password", "auth_failed")
        return None

    async def _tls_failed(self, peer: object, failure: TlsFailure) -> None:
        """A client of the ``wss://`` listener failed its TLS handshake: a ``tls_failed`` event, at most
        one per address per minute (the next one counts those held back)."""
        remote = _remote(peer)
        detail = self.handshake_limits.tls_failed(address_of(remote), failure.detail, time.monotonic())
        if detail is not None:
            await self._security("tls_failed", None, remote, detail, failure.severity)

    async def _rejected(self, station: str, remote: str, category: str, reason: str) -> None:
        event = ConnectionEvent(event="rejected", remote_address=remote, reason=f"{category}: {reason}")
        await self._publish_conn(station, event, protocol=None, msg_id=None)
        await self._security(category, station, remote, reason)

    # --- a connection ---------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        station = station_id_from_path(ws.request.path if ws.request else "")
        # the handshake's headers (~20 GC-tracked objects, ~3 KB) are not needed again; websockets
        # reads neither after the handshake (its `request` itself must stay: it marks the handshake done)
        ws.response = None
        if ws.request is not None:
            ws.request.headers.clear()
        protocol = ws.subprotocol
        if isinstance(station, Refusal) or protocol not in PROTOCOLS:
            await ws.close(1002, "handshake")  # unreachable: _process_request refused these
            return
        conn = StationConnection(
            station=station,
            connection_id=f"{self._connection_prefix}-{next(self._connection_numbers):x}",
            protocol=protocol,  # type: ignore[arg-type]
            remote_address=_address(ws),
            socket=ws,
            call_timeout=self.settings.call_timeout,
            connected_at=rfc3339(self.clock()),
        )
        previous = self.connections.get(station)
        self.connections[station] = conn
        subscription: Subscription | None = None
        close_code, close_reason = 1000, ""
        try:
            if previous is not None:
                await self._replace(previous)
            subscription = await self.nc.subscribe(subjects.ocpp_station_out(station), cb=self._outbound(conn))
            await self._announce(conn)
            async for data in ws:
                await self._inbound(conn, data)
        except ConnectionClosed:
            pass
        except StorageUnavailable as exc:
            log.error("%s: %s; closing the socket so the station retries later", station, exc)
            close_code, close_reason = 1011, "storage unavailable, retry later"
            await ws.close(close_code, close_reason)
        finally:
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            await conn.close()
            code = ws.close_code if ws.close_code is not None else close_code
            await self._part(conn, code, ws.close_reason or close_reason)

    async def _announce(self, conn: StationConnection) -> None:
        """Store the ``connected`` event and write presence, both in flight at once."""
        presence = await self._send_presence(conn)
        try:
            await self._lifecycle(conn, "connected")
        finally:
            await self._presence_written(conn, presence)
        self.connection_log.connected(conn.station, conn.protocol, conn.remote_address)

    async def _part(self, conn: StationConnection, code: int, reason: str) -> None:
        """The socket closed: delete presence (if this socket still holds the station) and store the
        ``disconnected`` event, both in flight at once."""
        dropped = None
        if self.connections.get(conn.station) is conn:
            del self.connections[conn.station]
            dropped = await self._drop_presence(conn)
        self.connection_log.disconnected(conn.station, code, reason, conn.frames)
        try:
            with contextlib.suppress(Exception):
                await self._lifecycle(conn, "disconnected", close_code=code, reason=reason)
        finally:
            if dropped is not None:
                with contextlib.suppress(NotStored):  # someone wrote the entry since: it is theirs now
                    await dropped

    async def _replace(self, previous: StationConnection) -> None:
        await self._lifecycle(previous, "replaced")
        await previous.socket.close(1000, "replaced by a new connection")

    async def _lifecycle(
        self,
        conn: StationConnection,
        event: Literal["connected", "disconnected", "replaced"],
        close_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Store a ``conn.{event}`` of this socket, numbered in its sequence of frames."""
        body = ConnectionEvent(
            event=event,
            remote_address=conn.remote_address,
            protocol=conn.protocol,
            close_code=close_code,
            reason=reason,
            connection=conn.connection_id,
        )
        await self._publish_conn(conn.station, body, protocol=conn.protocol, msg_id=conn.next_msg_id(self.id))

    # --- frames from the station ----------------------------------------------------------------

    async def _inbound(self, conn: StationConnection, data: str | bytes) -> None:
        received_at = rfc3339(self.clock())
        now = time.monotonic()
        limits = self.station_limits.of(conn, now)
        verdict = limits.inbound(now)  # a frame over the limit is stored and answered all the same
        if isinstance(data, bytes):
            reason = "binary frame (OCPP-J uses text frames)"
            answer = ocpp_j.call_error(ocpp_j.UNREADABLE_ID, ocpp_j.ERROR_CODES[conn.protocol].rpc, reason)
            message: ocpp_j.Message | Malformed = Malformed(
                reason=reason, unique_id=ocpp_j.UNREADABLE_ID, answer=answer
            )
        elif len(data) > self.settings.max_frame_bytes:
            message = ocpp_j.too_large(data, self.settings.max_frame_bytes, conn.protocol)
        else:
            message = ocpp_j.parse(data, conn.protocol)
        body = data if isinstance(data, bytes) else data.encode()

        if isinstance(message, Call):
            if message.type == MessageType.CALL:
                conn.expect_answer(message.unique_id)
            await self._publish_frame(
                conn, "in", message.action, message.type.name, message.unique_id, body, received_at
            )
        elif isinstance(message, CallResult | CallError):
            pending = conn.take_answer(message.unique_id)
            kind = "CALLRESULT" if isinstance(message, CallResult) else message.type.name
            if pending is None:
                reason = f"{kind} {message.unique_id} answers no CALL of ours in flight"
                await self._publish_invalid(conn, body, received_at, reason, message.unique_id)
            else:
                await self._publish_frame(conn, "in", pending.action, kind, message.unique_id, body, received_at)
        else:
            await self._publish_invalid(conn, body, received_at, message.reason, message.unique_id)
            detail = limits.bad_frame(message.reason, now)  # None: held back, counted in the next event
            if detail is not None:
                await self._security("bad_frame", conn.station, conn.remote_address, detail)
            if message.answer is not None:
                conn.expect_answer(message.unique_id)
                await self._publish(
                    subjects.ocpp_invalid(conn.station, "out"),
                    message.answer.encode(),
                    self._headers(conn, "out", subjects.INVALID, "CALLERROR", message.unique_id, rfc3339(self.clock())),
                )
        if verdict.event is not None:
            await self._security("rate_limited", conn.station, conn.remote_address, verdict.event)
        if verdict.disconnect:
            log.warning("%s: %s", conn.station, verdict.event)
            # not awaited: the station's close frame waits behind the frames it sent before it, which
            # this socket's loop must go on reading (and storing) for the closing handshake to finish
            closing = asyncio.create_task(conn.socket.close(CLOSE_POLICY_VIOLATION, "message rate limit exceeded"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _publish_frame(
        self,
        conn: StationConnection,
        direction: Direction,
        action: str,
        kind: str,
        unique_id: str,
        body: bytes,
        at: str,
    ) -> None:
        subject = subjects.ocpp_frame(conn.station, direction, action)
        await self._publish(subject, body, self._headers(conn, direction, action, kind, unique_id, at))

    async def _publish_invalid(
        self, conn: StationConnection, body: bytes, at: str, reason: str, unique_id: str
    ) -> None:
        headers = self._headers(conn, "in", subjects.INVALID, "INVALID", unique_id, at)
        headers[subjects.H_ERROR] = reason.replace("\r", " ").replace("\n", " ")
        await self._publish(subjects.ocpp_invalid(conn.station, "in"), body, headers)

    def _headers(
        self, conn: StationConnection, direction: Direction, action: str, kind: str, unique_id: str, at: str
    ) -> dict[str, str]:
        return subjects.frame_headers(
            station=conn.station,
            direction=direction,
            kind=kind,
            action=action,
            unique_id=unique_id,
            protocol=conn.protocol,
            gateway=self.id,
            connection=conn.connection_id,
            received_at=at,
            msg_id=conn.next_msg_id(self.id),
        )

    # --- frames to the station ------------------------------------------------------------------

    def _outbound(self, conn: StationConnection) -> Callable[[Msg], Awaitable[None]]:
        async def deliver(msg: Msg) -> None:
            headers = msg.headers or {}
            kind = headers.get(subjects.H_TYPE, "")
            unique_id = headers.get(subjects.H_ID, "")
            frame = msg.data.decode()
            if kind == "CALL" and H_REDACTED in headers:
                pass  # the stored copy of a CALL with secrets: the real one came on evbus.gateway.{id}.call
            elif kind == "CALL":
                conn.queue_call(
                    unique_id, headers.get(subjects.H_ACTION, ""), frame, timeout_of(headers.get(H_TIMEOUT))
                )
            elif kind in ("CALLRESULT", "CALLERROR"):
                if not await conn.deliver_answer(unique_id, frame):
                    log.debug("%s: dropped %s for %s: not awaited on this socket", conn.station, kind, unique_id)
            else:
                log.warning("%s: not sending %r frame from %s", conn.station, kind, msg.subject)

        return deliver

    # --- publishing -----------------------------------------------------------------------------

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        await publish_until_stored(self.store, subject, body, headers, budget=PUBLISH_BUDGET_S)

    async def _publish_conn(
        self, station: str, event: ConnectionEvent, protocol: Protocol | None, msg_id: str | None
    ) -> None:
        headers = {
            subjects.H_STATION: station,
            subjects.H_GATEWAY: self.id,
            subjects.H_RECEIVED_AT: rfc3339(self.clock()),
            subjects.H_MSG_ID: msg_id or f"{self.id}:{secrets.token_hex(8)}",
        }
        if protocol:
            headers[subjects.H_PROTOCOL] = protocol
        await self._publish(subjects.ocpp_conn(station, event.event), encode(event), headers)

    async def _security(
        self,
        category: str,
        station: str | None,
        remote: str,
        detail: str,
        severity: Literal["info", "warning", "critical"] = "warning",
    ) -> None:
        event = SecurityEvent(
            category=category,
            severity=severity,
            station=station,
            remote_address=remote,
            gateway=self.id,
            detail=detail,
            at=rfc3339(self.clock()),
        )
        headers = {subjects.H_MSG_ID: f"{self.id}:{secrets.token_hex(8)}"}
        if station:
            headers[subjects.H_STATION] = station
        try:
            await self._publish(subjects.security_event(category), encode(event), headers)
        except StorageUnavailable:
            log.error("security event %s for %s could not be stored", category, station)

    # --- control ------------------------------------------------------------------------------

    async def _direct_call(self, msg: Msg) -> None:
        """``evbus.gateway.{id}.call``: a CALL with secrets, which the stream keeps only redacted
        (ADR 8); queued like any of our CALLs. Replies ``{"queued":true|false}``."""
        headers = msg.headers or {}
        conn = self.connections.get(headers.get(subjects.H_STATION, ""))
        queued = conn is not None and conn.queue_call(
            headers.get(subjects.H_ID, ""),
            headers.get(subjects.H_ACTION, ""),
            msg.data.decode(),
            timeout_of(headers.get(H_TIMEOUT)),
        )
        if msg.reply:
            await msg.respond(b'{"queued":true}' if queued else b'{"queued":false}')

    async def _disconnect(self, msg: Msg) -> None:
        """``evbus.gateway.{id}.disconnect`` ``{station, reason?}``: close that station's socket
        (it is recorded as ``conn.disconnected`` with the reason); reply ``{disconnected: bool}``."""
        answer: dict[str, object]
        try:
            request = _disconnect_request(msg.data)
        except msgspec.DecodeError as exc:
            answer = {"disconnected": False, "error": str(exc)}
        else:
            conn = self.connections.get(request.station)
            if conn is not None:
                reason = f"disconnected by operator: {request.reason}" if request.reason else "disconnected by operator"
                log.info("%s: %s", request.station, reason)
                await conn.socket.close(1000, reason[:120])
            answer = {"disconnected": conn is not None}
        if msg.reply:
            await msg.respond(encode(answer))

    # --- presence -------------------------------------------------------------------------------

    def _presence(self, conn: StationConnection) -> tuple[str, bytes]:
        value = Presence(
            gateway=self.id,
            connection=conn.connection_id,
            protocol=conn.protocol,
            connected_at=conn.connected_at,
            remote_address=conn.remote_address,
        )
        return subjects.kv_subject(subjects.BUCKET_STATIONS, subjects.kv_key(conn.station)), encode(value)

    async def _send_presence(self, conn: StationConnection) -> asyncio.Future[int] | None:
        """Write the station's presence; the ack to await with :meth:`_presence_written`."""
        try:
            return await self.store.send(*self._presence(conn), {})
        except NotStored as exc:
            log.warning("%s: presence not written: %s", conn.station, exc)
            return None

    async def _presence_written(self, conn: StationConnection, ack: asyncio.Future[int] | None) -> None:
        if ack is None:
            return
        try:
            conn.presence_revision = await ack
        except NotStored as exc:  # presence is advisory: a station stays connected without it
            log.warning("%s: presence not written: %s", conn.station, exc)

    async def _drop_presence(self, conn: StationConnection) -> asyncio.Future[int] | None:
        """Delete the station's presence if it is still the entry this socket wrote: a delete that
        expects the revision of our last write, which JetStream refuses once anyone else wrote the
        key (a newer socket, here or on another gateway). The ack raises NotStored then."""
        if not conn.presence_revision:
            return None
        subject = subjects.kv_subject(subjects.BUCKET_STATIONS, subjects.kv_key(conn.station))
        headers = {KV_OP: KV_DEL, Header.EXPECTED_LAST_SUBJECT_SEQUENCE: str(conn.presence_revision)}
        try:
            return await self.store.send(subject, b"", headers)
        except NotStored:
            return None

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_TTL_S / 3)
            try:
                await self.refresh_presence()
            except Exception:  # the next round tries again; presence must not stop being refreshed
                log.exception("refreshing presence failed")
            self.connection_log.summary(len(self.connections))

    async def refresh_presence(self) -> int:
        """Rewrite every station's presence before its TTL ends, pipelined in chunks; the count not written."""
        connections = list(self.connections.values())
        failed = 0
        for start in range(0, len(connections), PRESENCE_CHUNK):
            chunk = [c for c in connections[start : start + PRESENCE_CHUNK] if self.connections.get(c.station) is c]
            sent: list[StationConnection] = []
            acks: list[asyncio.Future[int]] = []
            for conn in chunk:
                try:
                    acks.append(await self.store.send(*self._presence(conn), {}))
                    sent.append(conn)
                except NotStored:
                    failed += 1
            results = await asyncio.gather(*acks, return_exceptions=True)
            for conn, result in zip(sent, results, strict=True):
                if isinstance(result, BaseException):
                    failed += 1
                else:
                    conn.presence_revision = result
        if failed:
            log.warning("presence of %d of %d stations not refreshed", failed, len(connections))
        return failed


class DisconnectRequest(msgspec.Struct, forbid_unknown_fields=True):
    station: str
    reason: str = ""


_disconnect_request = msgspec.json.Decoder(DisconnectRequest).decode


def _address(ws: ServerConnection) -> str:
    return _remote(ws.remote_address)


def _remote(peer: object) -> str:
    """A socket's peer address as ``host:port`` (IPv6 too: ``::1:53211``)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _redact_handshake_logs() -> None:
    logger = logging.getLogger("websockets.server")
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())


def _refuse(ws: ServerConnection, status: HTTPStatus, reason: str) -> Response:
    return ws.respond(status, reason + "\n")


def _unauthorized(ws: ServerConnection) -> Response:
    response = ws.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="evbus", charset="UTF-8"'
    return response


__all__ = ["OcppGateway", "StorageUnavailable", "default_gateway_id"]
