"""The CSMS processor: consumes station frames from the ``OCPP`` stream and answers every CALL.

FastStream delivers the durable ``csms`` consumer's messages one at a time, in stream order; the
handler only hands each to its station's lane. A lane answers its station's calls strictly in
order while other stations' lanes run concurrently, so one slow station holds up no one. A frame
is acked after its answer is stored (at-least-once); a redelivered frame produces the same answer
under the same ``Nats-Msg-Id`` (``csms:{stream seq}``), which JetStream stores once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections import deque
from dataclasses import dataclass, field

import msgspec
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from evbus.clock import Clock, rfc3339, utc_now
from evbus.kv import KvMirror
from evbus.publishing import Store, publish_until_stored
from evbus.settings import Settings
from processors.csms.answer import Answer, answer
from processors.csms.context import Services
from processors.csms.transactions import KvTransactionIds
from schemas import ocpp_j, streams, subjects
from schemas.ocpp_j import PROTOCOLS, Call, Protocol
from schemas.records import TokenRecord, TransactionEvent, encode
from schemas.streams import csms_consumer

log = logging.getLogger(__name__)

ORPHAN_STOP_BUDGET_S = 10.0


class InboundFrame(msgspec.Struct):
    """A station frame as the processor sees it: headers, verbatim body, stream position."""

    subject: str
    headers: dict[str, str]
    body: bytes
    seq: int
    msg: Msg


async def parse_frame(msg: Msg) -> NatsMessage:
    """FastStream's message for a stored frame, named by its ``Nats-Msg-Id``.

    FastStream's own parser gives every message without a ``correlation_id`` header a fresh
    ``uuid4()``: 5 % of evbus's CPU under load (bench/RESULTS.md). Every frame already has an id.
    """
    headers = msg.headers or {}
    msg_id = headers.get(subjects.H_MSG_ID)
    return NatsMessage(raw_message=msg, body=msg.data, headers=headers, correlation_id=msg_id, message_id=msg_id)


async def decode_frame(message: NatsMessage) -> InboundFrame:
    # async on purpose: FastStream runs a plain-def decoder in a worker thread (5x slower)
    raw: Msg = message.raw_message
    seq, _, _ = streams.delivery(raw.reply)  # not raw.metadata: no nats-py metadata objects per frame
    return InboundFrame(raw.subject, raw.headers or {}, raw.data, seq, raw)


@dataclass(eq=False, slots=True)
class _Lane:
    frames: deque[InboundFrame] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class StreamEvents:
    """Events the handlers raise, published to the ``EVENTS`` stream."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def orphan_stop(self, station: str, transaction_id: int | str, unique_id: str) -> None:
        body = TransactionEvent(
            event="orphan_stop",
            station=station,
            transaction_id=transaction_id,
            unique_id=unique_id,
            at=rfc3339(self._clock()),
        )
        headers = {subjects.H_STATION: station, subjects.H_MSG_ID: f"csms:orphan_stop:{station}:{unique_id}"}
        subject = subjects.transaction_event(station, "orphan_stop")
        await publish_until_stored(self._store, subject, encode(body), headers, budget=ORPHAN_STOP_BUDGET_S)


class CsmsProcessor:
    def __init__(self, nc: NATS, nats_url: str, settings: Settings, clock: Clock = utc_now) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.store = Store(nc)
        self.settings = settings
        self.clock = clock
        # apply_types=False: the handler takes the decoded frame as is, without FastDepends per message
        self.broker = NatsBroker(nats_url, serializer=None, logger=None, apply_types=False)
        self._lanes: dict[str, _Lane] = {}
        self._tokens: KvMirror[TokenRecord] | None = None
        self.services: Services | None = None
        with warnings.catch_warnings():
            # FastStream warns that a durable push consumer cannot be shared by replicas: one
            # processor owns the per-station lanes by design (docs/adr/0002-processor-lanes.md)
            warnings.simplefilter("ignore", RuntimeWarning)
            subscriber = self.broker.subscriber(
                subjects.OCPP_ALL_IN,
                stream=JStream(subjects.STREAM_OCPP, declare=False),
                durable=subjects.CONSUMER_CSMS,
                config=csms_consumer(),
                ack_policy=AckPolicy.MANUAL,
                parser=parse_frame,
                decoder=decode_frame,
            )
        subscriber(self._on_frame)

    async def start(self) -> None:
        await self.store.start()
        self._tokens = await KvMirror.open(self.js, subjects.BUCKET_TOKENS, TokenRecord)
        self.services = Services(
            settings=self.settings,
            tokens=self._tokens,
            transactions=KvTransactionIds(await self.js.key_value(subjects.BUCKET_CSMS)),
            events=StreamEvents(self.store, self.clock),
            clock=self.clock,
        )
        await self.broker.start()
        log.info("CSMS processor consuming %s as %r", subjects.OCPP_ALL_IN, subjects.CONSUMER_CSMS)

    async def stop(self) -> None:
        await self.broker.stop()
        for lane in list(self._lanes.values()):
            if lane.task:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
        if self._tokens:
            await self._tokens.stop()
        await self.store.stop()

    # --- ordering: one lane per station ---------------------------------------------------------

    async def _on_frame(self, frame: InboundFrame) -> None:
        station = frame.headers.get(subjects.H_STATION, "")
        lane = self._lanes.get(station)
        if lane is None:
            lane = self._lanes[station] = _Lane()
        lane.frames.append(frame)
        if lane.task is None:
            lane.task = asyncio.create_task(self._drain(station, lane), name=f"csms-{station}")

    async def _drain(self, station: str, lane: _Lane) -> None:
        try:
            while lane.frames:
                try:
                    await self._process(lane.frames[0])
                except Exception:  # one frame must not stop its station's lane for good
                    log.exception("%s: frame at seq %d failed; answering InternalError", station, lane.frames[0].seq)
                    await self._internal_error(lane.frames[0])
                lane.frames.popleft()
        finally:
            lane.task = None
            if not lane.frames and self._lanes.get(station) is lane:
                del self._lanes[station]

    async def _process(self, frame: InboundFrame) -> None:
        headers = frame.headers
        protocol = headers.get(subjects.H_PROTOCOL)
        if headers.get(subjects.H_TYPE) != "CALL" or protocol not in PROTOCOLS:
            await frame.msg.ack()  # results go to whoever sent the CALL; _invalid was answered by the gateway
            return
        station = headers[subjects.H_STATION]
        message = ocpp_j.parse(frame.body, protocol)  # type: ignore[arg-type]
        if not isinstance(message, Call):
            log.error("%s: stored CALL at seq %d does not parse: %s", station, frame.seq, message)
            await frame.msg.ack()
            return
        assert self.services is not None
        reply = await answer(message, station, protocol, self.services)  # type: ignore[arg-type]
        if reply is not None:
            await self._publish_answer(frame, message, protocol, reply)  # type: ignore[arg-type]
        await frame.msg.ack()

    async def _internal_error(self, frame: InboundFrame) -> None:
        """Answer a CALL that could not be processed with CALLERROR InternalError, then ack it: a
        redelivery would fail the same way and hold up every later call of the station."""
        protocol = frame.headers.get(subjects.H_PROTOCOL)
        message = ocpp_j.parse(frame.body, protocol) if protocol in PROTOCOLS else None  # type: ignore[arg-type]
        if isinstance(message, Call) and message.type == ocpp_j.MessageType.CALL:
            codes = ocpp_j.ERROR_CODES[protocol]  # type: ignore[index]
            error = Answer("CALLERROR", ocpp_j.call_error(message.unique_id, codes.internal, "internal error"))
            with contextlib.suppress(Exception):
                await self._publish_answer(frame, message, protocol, error)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            await frame.msg.ack()

    async def _publish_answer(self, frame: InboundFrame, call: Call, protocol: Protocol, reply: Answer) -> None:
        station = frame.headers[subjects.H_STATION]
        headers = subjects.frame_headers(
            station=station,
            direction="out",
            kind=reply.kind,
            action=call.action,
            unique_id=call.unique_id,
            protocol=protocol,
            gateway=frame.headers.get(subjects.H_GATEWAY, ""),
            connection=frame.headers.get(subjects.H_CONNECTION, ""),
            received_at=rfc3339(self.clock()),
            msg_id=f"csms:{frame.seq}",
        )
        subject = subjects.ocpp_frame(station, "out", call.action)
        # no budget: the lane waits, because its station's later calls must not overtake this answer
        await publish_until_stored(self.store, subject, reply.frame.encode(), headers, budget=None)
