"""The command processor: serves ``cmd.{station}.{action}`` requests by sending the station a CALL.

One request, one command (schemas/commands.py has the contract):

1. ``requested`` is recorded; the station's presence (KV ``stations``) says whether a gateway holds
   its socket and which protocol it speaks. No presence: ``offline`` at once.
2. The payload must be valid for that protocol's request schema, or the command is ``invalid``.
   Nothing else is checked: connector 99 or an unknown reservation is the station's to answer.
3. The processor subscribes to the station's inbound frames, then stores the CALL on
   ``ocpp.{station}.out.{action}`` with the command id as its OCPP unique id. The gateway holding
   the socket (on any host) receives it there and sends it, one CALL in flight per station.
4. The station's CALLRESULT/CALLERROR is stored by its gateway like every frame; the processor sees
   it on the subscription, records ``answered`` or ``failed`` and replies. No answer within the
   timeout: ``timed_out``. A late answer still lands in the stream and the read models.

Processors join the queue group ``commands``, so any number may run: each request goes to one.
The payload goes on the wire byte for byte as requested, so its member order is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, Final

import msgspec
from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from evbus.clock import Clock, rfc3339, utc_now
from evbus.publishing import NotStored, StorageUnavailable, Store, publish_until_stored
from evbus.settings import Settings
from schemas import commands, payloads, subjects
from schemas.commands import CommandEvent, CommandReply, EventStatus, Outcome
from schemas.ocpp_j import PROTOCOLS, Protocol
from schemas.records import Presence

log = logging.getLogger(__name__)

STORE_BUDGET_S: Final = 5.0  # a CALL JetStream has not stored by then is not sent
MAX_IN_FLIGHT: Final = 1000  # commands one processor waits on at once; more wait in line
_ANSWERS: Final = frozenset({"CALLRESULT", "CALLERROR", "CALLRESULTERROR"})

_elements = msgspec.json.Decoder(list[msgspec.Raw]).decode
_text = msgspec.json.Decoder(str).decode
_presence = msgspec.json.Decoder(Presence).decode
_json = msgspec.json.encode


async def _raw(message: NatsMessage) -> Msg:
    # async on purpose: FastStream runs a plain-def decoder in a worker thread
    raw: Msg = message.raw_message
    return raw


class _Command:
    """One command while it runs: what it is, and the events it records."""

    def __init__(self, processor: CommandProcessor, msg: Msg) -> None:
        self.processor = processor
        parts = msg.subject.split(".")
        self.station = subjects.untoken(parts[1])
        self.action = subjects.untoken(parts[2])
        headers = msg.headers or {}
        self.id = headers.get(commands.H_COMMAND_ID) or str(uuid.uuid4())
        self.command = headers.get(commands.H_COMMAND)
        self.requested_by = headers.get(commands.H_REQUESTED_BY)
        self.timeout = _timeout(headers.get(commands.H_TIMEOUT), processor.settings.call_timeout)
        self.body = msg.data
        self.secrets = [p for p in headers.get(commands.H_SECRET, "").split(",") if p.startswith("/")]
        self.protocol: str | None = None
        self.gateway: str | None = None
        self.started = time.perf_counter()
        self.stored_body = self.body  # what the stream keeps of the payload
        self.unsettled: list[tuple[str, bytes, dict[str, str], asyncio.Future[int] | None]] = []

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    async def record(self, status: EventStatus, **fields: object) -> None:
        """Store ``events.command.{station}.{status}`` and every event sent before it. A command
        goes on if its event cannot be stored."""
        await self.record_soon(status, **fields)
        await self.settle()

    async def record_soon(self, status: EventStatus, **fields: object) -> None:
        """Publish the event now; :meth:`settle` checks its ack. Events leave in order on one
        connection, so they are stored in order."""
        event = CommandEvent(
            command_id=self.id,
            station=self.station,
            action=self.action,
            status=status,
            at=rfc3339(self.processor.clock()),
            command=self.command,
            protocol=self.protocol,
            gateway=self.gateway,
            requested_by=self.requested_by,
            **fields,  # type: ignore[arg-type]
        )
        subject = subjects.command_event(self.station, status)
        body = commands.encode(event)
        headers = {subjects.H_STATION: self.station, subjects.H_MSG_ID: f"cmd:{self.id}:{status}"}
        try:
            ack: asyncio.Future[int] | None = await self.processor.store.send(subject, body, headers)
        except NotStored:
            ack = None  # settle() publishes it again
        self.unsettled.append((subject, body, headers, ack))

    async def settle(self) -> None:
        """Wait for the acks of the events sent so far; publish again (same Nats-Msg-Id) what was not
        stored. Only then can an event land after a later one of the same command."""
        unsettled, self.unsettled = self.unsettled, []
        for subject, body, headers, ack in unsettled:
            if ack is not None:
                try:
                    await ack
                    continue
                except NotStored:
                    pass
            try:
                await publish_until_stored(self.processor.store, subject, body, headers, budget=STORE_BUDGET_S)
            except StorageUnavailable as exc:
                log.error("command %s %s: %s not stored: %s", self.id, self.action, subject, exc)

    async def fail(self, outcome: Outcome, detail: str, **fields: object) -> CommandReply:
        duration = self.elapsed_ms()
        await self.record("failed", outcome=outcome, detail=detail, duration_ms=duration, **fields)
        return self.reply(outcome, detail=detail, duration_ms=duration, **fields)

    def reply(self, outcome: Outcome, **fields: object) -> CommandReply:
        return CommandReply(
            command_id=self.id,
            station=self.station,
            action=self.action,
            outcome=outcome,
            protocol=self.protocol,
            **fields,  # type: ignore[arg-type]
        )


class CommandProcessor:
    def __init__(self, nc: NATS, nats_url: str, settings: Settings, clock: Clock = utc_now) -> None:
        self.nc = nc
        self.store = Store(nc)
        self.settings = settings
        self.clock = clock
        self._presence_kv: KeyValue | None = None
        self.broker = NatsBroker(nats_url, serializer=None, logger=None, apply_types=False)
        subscriber = self.broker.subscriber(
            subjects.COMMANDS_ALL, queue=commands.QUEUE, max_workers=MAX_IN_FLIGHT, decoder=_raw
        )
        subscriber(self._on_request)

    async def start(self) -> None:
        await self.store.start()
        self._presence_kv = await self.nc.jetstream().key_value(subjects.BUCKET_STATIONS)
        await self.broker.start()
        log.info("command processor serving %s in queue group %r", subjects.COMMANDS_ALL, commands.QUEUE)

    async def stop(self) -> None:
        await self.broker.stop()
        await self.store.stop()

    async def _on_request(self, msg: Msg) -> bytes:
        try:
            reply = await self.run(msg)
        except Exception:  # the requester gets an answer even when something here is broken
            log.exception("command on %s failed", msg.subject)
            return commands.encode({"outcome": "unavailable", "detail": "internal error in the command processor"})
        return commands.encode(reply)

    async def run(self, msg: Msg) -> CommandReply:
        cmd = _Command(self, msg)
        if not commands.COMMAND_ID.fullmatch(cmd.id):
            bad, cmd.id = cmd.id, str(uuid.uuid4())
            return cmd.reply("invalid", detail=f"command id {bad[:60]!r} is not 1-36 of [A-Za-z0-9_.:-]")
        try:
            payload = msgspec.json.decode(cmd.body)
        except msgspec.DecodeError as exc:
            await cmd.record("requested", detail="payload is not JSON", timeout_s=cmd.timeout)
            return await cmd.fail("invalid", f"payload is not JSON: {exc}")
        presence = await self._where(cmd.station)
        if presence is not None:
            cmd.protocol, cmd.gateway = presence.protocol, presence.gateway
        if cmd.secrets:  # from here on, only the station sees the secret members
            cmd.stored_body = _json(redact(payload, cmd.secrets))
        await cmd.record_soon("requested", payload=msgspec.Raw(cmd.stored_body), timeout_s=cmd.timeout)
        if presence is None or presence.protocol not in PROTOCOLS:
            return await cmd.fail("offline", f"station {cmd.station!r} is not connected")
        protocol: Protocol = presence.protocol  # type: ignore[assignment]
        if not payloads.knows(protocol, cmd.action):
            return await cmd.fail("invalid", f"{cmd.action} is not an {protocol} action")
        problem = payloads.validate(protocol, cmd.action, payload)
        if problem is not None:
            return await cmd.fail("invalid", f"{cmd.action} payload is not valid {protocol}: {problem.description}")
        return await self._call(cmd, protocol, presence)

    async def _call(self, cmd: _Command, protocol: Protocol, presence: Presence) -> CommandReply:
        answer: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        async def on_inbound(msg: Msg) -> None:
            headers = msg.headers or {}
            ours = headers.get(subjects.H_ID) == cmd.id and headers.get(subjects.H_TYPE) in _ANSWERS
            if ours and not answer.done():
                answer.set_result(msg)

        subscription = await self.nc.subscribe(f"ocpp.{subjects.token(cmd.station)}.in.>", cb=on_inbound)
        try:
            frame = b"[2," + _json(cmd.id) + b"," + _json(cmd.action) + b"," + cmd.stored_body.strip() + b"]"
            headers = subjects.frame_headers(
                station=cmd.station,
                direction="out",
                kind="CALL",
                action=cmd.action,
                unique_id=cmd.id,
                protocol=protocol,
                gateway=presence.gateway,
                connection=presence.connection,
                received_at=rfc3339(self.clock()),
                msg_id=f"cmd:{cmd.id}",
            )
            headers[commands.H_TIMEOUT] = f"{cmd.timeout:g}"  # the gateway waits no longer before the next CALL
            if cmd.secrets:  # the gateway does not send this copy: it gets the real one below
                headers[commands.H_REDACTED] = ",".join(cmd.secrets)
            subject = subjects.ocpp_frame(cmd.station, "out", cmd.action)
            try:
                await publish_until_stored(self.store, subject, frame, headers, budget=STORE_BUDGET_S)
            except StorageUnavailable as exc:
                return await cmd.fail("unavailable", f"the CALL could not be stored: {exc}")
            if cmd.secrets and not await self._hand_over(cmd, presence):
                return await cmd.fail("offline", f"gateway {presence.gateway!r} no longer holds {cmd.station!r}")
            await cmd.record_soon("sent")
            try:
                msg = await asyncio.wait_for(answer, cmd.timeout)
            except TimeoutError:
                duration = cmd.elapsed_ms()
                detail = f"no answer from {cmd.station!r} within {cmd.timeout:g} s"
                await cmd.record("timed_out", outcome="timeout", detail=detail, duration_ms=duration)
                return cmd.reply("timeout", detail=detail, duration_ms=duration)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        return await self._answered(cmd, msg)

    async def _answered(self, cmd: _Command, msg: Msg) -> CommandReply:
        duration = cmd.elapsed_ms()
        try:
            elements = _elements(msg.data)
        except msgspec.DecodeError:
            elements = []
        if (msg.headers or {}).get(subjects.H_TYPE) == "CALLRESULT" and len(elements) >= 3:
            response = elements[2]
            await cmd.record("answered", outcome="answered", response=response, duration_ms=duration)
            return cmd.reply("answered", response=response, duration_ms=duration)
        code = _as_text(elements[2]) if len(elements) > 2 else "GenericError"
        description = _as_text(elements[3]) if len(elements) > 3 else ""
        details = elements[4] if len(elements) > 4 else commands.NONE
        return await cmd.fail(
            "error",
            f"the station answered CALLERROR {code}",
            error_code=code,
            error_description=description,
            error_details=details,
        )

    async def _hand_over(self, cmd: _Command, presence: Presence) -> bool:
        """The real frame of a CALL with secrets, straight to the gateway holding the socket (core
        NATS, stored nowhere); True once it is queued there."""
        frame = b"[2," + _json(cmd.id) + b"," + _json(cmd.action) + b"," + cmd.body.strip() + b"]"
        headers = {
            subjects.H_STATION: cmd.station,
            subjects.H_ID: cmd.id,
            subjects.H_ACTION: cmd.action,
            commands.H_TIMEOUT: f"{cmd.timeout:g}",
        }
        try:
            reply = await self.nc.request(
                subjects.gateway_control(presence.gateway, "call"), frame, timeout=STORE_BUDGET_S, headers=headers
            )
        except Exception as exc:
            log.warning("command %s: gateway %s did not take the CALL: %r", cmd.id, presence.gateway, exc)
            return False
        return reply.data == b'{"queued":true}'

    async def _where(self, station: str) -> Presence | None:
        """The station's presence entry: which gateway holds its socket, in which protocol."""
        assert self._presence_kv is not None
        try:
            entry = await self._presence_kv.get(subjects.kv_key(station))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        try:
            return _presence(entry.value)
        except msgspec.DecodeError:
            log.warning("unreadable presence of %r", station)
            return None


def redact(payload: Any, pointers: list[str]) -> Any:
    """``payload`` with the members at ``pointers`` (JSON pointers) replaced by ``"***"``."""
    for pointer in pointers:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        node = payload
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict) and part in node:
                if last:
                    node[part] = commands.REDACTED
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                if last:
                    node[int(part)] = commands.REDACTED
                node = node[int(part)]
            else:
                break
    return payload


def _timeout(text: str | None, default: float) -> float:
    return min(commands.timeout_of(text) or default, commands.MAX_TIMEOUT_S)


def _as_text(raw: msgspec.Raw) -> str:
    try:
        return _text(raw)
    except msgspec.DecodeError:
        return bytes(raw).decode("utf-8", "replace")
