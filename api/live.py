"""Live feeds for the SSE routes: one reader per stream per process, fanned out to every client.

A :class:`Hub` reads one stream (``OCPP`` or ``EVENTS``) from the position it had when the API
started, keeps the last :data:`RING` messages, and offers each message to every client whose feed
wants it. A message is rendered into its SSE event once, however many clients get it.

Every data event's ``id:`` is a cursor: the stream sequence of the last event the client got from
each of its feed's streams, joined by ``-`` (``1520`` for a feed of one stream, ``1520-33`` for
the events feed, which reads both). A client that comes back with ``Last-Event-ID`` gets exactly
what it missed: what is still in the hub's ring from there, and what is older straight from the
stream (a consumer of its own for that catch-up only), then the live messages, none twice, even
after an API restart (the stream is the record; the ring only saves reads).

A client's buffer is bounded (``EVBUS_SSE_CLIENT_BUFFER`` events). One that does not keep up gets
what its buffer holds, then a final ``overflow`` event whose ``id:`` is the cursor to resume from,
and the stream ends; the hub and every other client carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy

from evbus.clock import parse_rfc3339, rfc3339
from evbus.push_reader import Gap, PushReader, ReaderError, headers
from projections import views
from projections.batch import event_content, frame_content
from schemas import subjects

log = logging.getLogger(__name__)

RING: Final = 10_000  # messages a hub keeps for clients that come back
TELEMETRY_EVERY_S: Final = 2.0
_encode = msgspec.json.Encoder().encode
_MAX_SEQ: Final = 2**63 - 1
_CURSOR: Final = re.compile(r"\d{1,19}(?:-\d{1,19})*")


class Event(msgspec.Struct, kw_only=True, rename="camel"):
    """Data of an ``event`` event: a connection's or a command's lifecycle, a transaction or an
    operator's change — one message of the ``OCPP`` stream's ``conn`` subjects or of ``EVENTS``."""

    stream: str
    seq: int
    kind: str  # connection, command, transaction, admin, …
    name: str  # connected, disconnected, …; requested, answered, …
    identity: str | None
    timestamp: str | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rendered:
    """One stream message as an SSE event (without its ``id:`` line), with what filters look at."""

    kind: str  # frame | connection | security | command | transaction | admin | …
    station: str | None
    name: str | None  # the frame's action, the event's name or security category
    direction: str | None = None  # frames: IN | OUT
    type: str | None = None  # frames: CALL | CALLRESULT | …
    severity: str | None = None  # security events
    frame: bytes = b""  # "event: …\ndata: …\n\n"


def sse(event: str, data: bytes, cursor: str | None = None) -> bytes:
    """One SSE event. ``data`` is one line of JSON (msgspec never writes a raw newline)."""
    head = b"id: %s\n" % cursor.encode() if cursor is not None else b""
    return b"%sevent: %s\ndata: %s\n\n" % (head, event.encode(), data)


# --- rendering what each stream holds ----------------------------------------------------------


def render_ocpp(seq: int, subject: bytes, block: bytes, data: bytes) -> Rendered | None:
    """A frame as a ``message`` event (the fields of ``GET /api/messages``), a connection event as
    an ``event`` event."""
    parts = subject.decode().split(".")
    if len(parts) < 4:
        return None
    found = headers(block)
    get = found.get
    station = get(subjects.H_STATION) or subjects.untoken(parts[1])
    where = parts[2]
    if where == "conn":
        try:
            body = msgspec.json.decode(data)
        except msgspec.DecodeError:
            body = {"raw": data.decode("utf-8", "replace")}
        name = subjects.untoken(parts[3])
        event = Event(
            stream=subjects.STREAM_OCPP,
            seq=seq,
            kind="connection",
            name=name,
            identity=station,
            timestamp=get(subjects.H_RECEIVED_AT),
            body=body if isinstance(body, dict) else {"raw": body},
        )
        return Rendered("connection", station, name, frame=sse("event", _encode(event)))
    kind, payload, error_code, error_description = frame_content(where, parts[3], get, data)
    direction: Literal["IN", "OUT"] = "IN" if where == "in" else "OUT"
    action = get(subjects.H_ACTION) or None
    message = views.Message(
        id=seq,
        identity=station,
        method=action,
        direction=direction,
        type=kind,
        unique_id=get(subjects.H_ID) or None,
        protocol=get(subjects.H_PROTOCOL) or None,
        timestamp=get(subjects.H_RECEIVED_AT) or "",
        payload=None if payload is None else msgspec.Raw(payload.encode()),
        error_code=error_code,
        error_description=error_description,
    )
    return Rendered("frame", station, action, direction, kind, frame=sse("message", _encode(message)))


def render_event(seq: int, subject: bytes, block: bytes, data: bytes) -> Rendered | None:
    """A security event as a ``security`` event (the fields of ``GET /api/security``), any other
    as an ``event`` event."""
    parts = subject.decode().split(".")
    if len(parts) < 3:
        return None
    kind, name, station, body = event_content(parts, headers(block), data)
    at = _timestamp(body.get("at"))
    if kind == "security":
        severity = body.get("severity") if isinstance(body.get("severity"), str) else None
        detail = body.get("detail")
        security = views.SecurityEvent(
            id=seq,
            category=name,
            identity=station,
            message=detail if isinstance(detail, str) else None,
            severity=severity,
            details=msgspec.Raw(_encode(body)),
            timestamp=at or "",
        )
        return Rendered("security", station, name, severity=severity, frame=sse("security", _encode(security)))
    event = Event(
        stream=subjects.STREAM_EVENTS, seq=seq, kind=kind, name=name, identity=station, timestamp=at, body=body
    )
    return Rendered(kind, station, name, frame=sse("event", _encode(event)))


def _timestamp(value: object) -> str | None:
    """An event's ``at`` as the API writes times (``…T…​.ffffffZ``)."""
    if not isinstance(value, str):
        return None
    try:
        return rfc3339(parse_rfc3339(value))
    except ValueError:
        return value


# --- hubs and clients ---------------------------------------------------------------------------


class Message:
    """A stream message as the hub keeps it: rendered only when some client needs it."""

    __slots__ = ("block", "data", "render", "rendered", "seq", "subject")

    def __init__(self, seq: int, subject: bytes, block: bytes, data: bytes, render: Renderer) -> None:
        self.seq, self.subject, self.block, self.data, self.render = seq, subject, block, data, render
        self.rendered: Rendered | bool | None = False  # False: not rendered yet

    def get(self) -> Rendered | None:
        if self.rendered is False:
            try:
                self.rendered = self.render(self.seq, self.subject, self.block, self.data)
            except Exception:  # a message we cannot show is skipped, never the feed
                log.exception("cannot render %s seq %s for SSE", self.subject, self.seq)
                self.rendered = None
        return self.rendered  # type: ignore[return-value]


Renderer = Callable[[int, bytes, bytes, bytes], "Rendered | None"]
Want = Callable[[Rendered], bool]


class Client:
    """One SSE client: which messages of which hubs it wants, and its bounded buffer."""

    __slots__ = ("buffer", "limit", "overflowed", "wake", "wants")

    def __init__(self, wants: Sequence[Want], limit: int) -> None:
        self.wants = wants  # per source of its feed
        self.limit = limit
        self.buffer: deque[tuple[int, int, Rendered]] = deque()  # (source, seq, event)
        self.overflowed = False
        self.wake = asyncio.Event()

    def offer(self, source: int, message: Message) -> None:
        if self.overflowed:
            return
        rendered = message.get()
        if rendered is None or not self.wants[source](rendered):
            return
        if len(self.buffer) >= self.limit:
            self.overflowed = True
        else:
            self.buffer.append((source, message.seq, rendered))
        self.wake.set()


class Hub:
    """The one live reader of a stream in this process, and its clients."""

    def __init__(self, nc: NATS, stream: str, filter_subject: str, render: Renderer, ring: int = RING) -> None:
        self.nc = nc
        self.stream = stream
        self.filter_subject = filter_subject
        self.render = render
        self.ring: deque[Message] = deque(maxlen=ring)
        self.position = 0  # the last sequence taken
        self.clients: dict[Client, int] = {}  # client → its source index
        self.delivered = 0
        self._task: asyncio.Task[None] | None = None
        self.retry_s = 0.5

    async def start(self) -> None:
        info = await self.nc.jetstream().stream_info(self.stream)
        self.position = info.state.last_seq
        self._task = asyncio.create_task(self._run(), name=f"sse-{self.stream}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _take(self, subject: bytes, seq: int, _ns: int, _pending: int, block: bytes, data: bytes) -> bool:
        if seq <= self.position:
            return False  # a new consumer after a gap may hand out one we have
        self.position = seq
        message = Message(seq, subject, block, data, self.render)
        self.ring.append(message)
        for client, source in self.clients.items():
            client.offer(source, message)
        return False

    async def _run(self) -> None:
        while True:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.position + 1,
                filter_subject=self.filter_subject,
            )
            try:
                async with PushReader.open(self.nc, self.stream, config) as reader:
                    while True:
                        await reader.read(self._take)
            except (ReaderError, OSError, TimeoutError) as exc:
                log.warning(
                    "SSE reader of %s stopped after %s (%s); starting a new one", self.stream, self.position, exc
                )
            except Exception:
                log.exception("SSE reader of %s failed after %s; starting a new one", self.stream, self.position)
            await asyncio.sleep(self.retry_s)

    def join(self, client: Client, source: int, after: int) -> list[Message]:
        """Add ``client`` and hand back what the ring holds after ``after``. What is older than the
        ring and newer than ``after`` is the caller's to read (:meth:`stored`)."""
        self.clients[client] = source
        if after >= self.position:
            return []
        return [m for m in self.ring if m.seq > after]

    def leave(self, client: Client) -> None:
        self.clients.pop(client, None)

    def oldest(self) -> int:
        """The first sequence a joining client gets from the ring (or live)."""
        return self.ring[0].seq if self.ring else self.position + 1

    async def stored(self, after: int, before: int) -> AsyncIterator[list[Message]]:
        """What the stream holds after ``after`` and before ``before``, in order, in batches (one
        consumer of its own, for this read only)."""
        out: list[Message] = []
        last, done = after, False

        def take(subject: bytes, seq: int, _ns: int, pending: int, block: bytes, data: bytes) -> bool:
            nonlocal last, done
            if seq < before and seq > last:
                last = seq
                out.append(Message(seq, subject, block, data, self.render))
            done = seq + 1 >= before or pending == 0
            return done

        while not done and last + 1 < before:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=last + 1,
                filter_subject=self.filter_subject,
            )
            try:
                async with PushReader.open(self.nc, self.stream, config) as reader:
                    if not reader.consumer.num_pending:
                        return
                    while not done:
                        await reader.read(take)
                        if out:
                            batch, out = out, []
                            yield batch
            except Gap:  # a delivery went missing: a new consumer after the last one taken
                continue


class Live:
    """This process's hubs (one reader per stream), the telemetry all clients share, and how many
    streams each token or session holds."""

    def __init__(self, nc: NATS, telemetry: Callable[[], Awaitable[Any]]) -> None:
        self.ocpp = Hub(nc, subjects.STREAM_OCPP, subjects.OCPP_ALL, render_ocpp)
        self.events = Hub(nc, subjects.STREAM_EVENTS, subjects.EVENTS_ALL, render_event)
        self.held: dict[str, int] = {}  # holder → open streams
        self.overflows = 0  # clients sent `overflow` since start
        self._telemetry = telemetry
        self._last: tuple[float, Any] | None = None
        self._computing = asyncio.Lock()

    async def start(self) -> None:
        await self.ocpp.start()
        await self.events.start()

    async def stop(self) -> None:
        await self.ocpp.stop()
        await self.events.stop()

    async def telemetry(self) -> Any:
        """The telemetry of the last 2 s, computed once for every client that asks."""
        async with self._computing:
            now = asyncio.get_running_loop().time()
            if self._last is None or now - self._last[0] >= 0.9 * TELEMETRY_EVERY_S:
                self._last = (now, await self._telemetry())
            return self._last[1]


# --- feeds --------------------------------------------------------------------------------------


def parse_cursor(text: str | None, sources: int) -> list[int] | None:
    """A ``Last-Event-ID`` of a feed with ``sources`` streams; None for none; ValueError if bad."""
    if text is None or text == "":
        return None
    text = text.strip()
    if not _CURSOR.fullmatch(text):
        raise ValueError("Last-Event-ID must be stream sequences joined by '-'")
    positions = [int(p) for p in text.split("-")]
    if len(positions) != sources or any(p > _MAX_SEQ for p in positions):
        raise ValueError(f"Last-Event-ID of this stream has {sources} sequence(s)")
    return positions


def cursor(positions: Sequence[int]) -> str:
    return "-".join(str(p) for p in positions)


OVERFLOW: Final = "overflow"


async def follow(
    sources: Sequence[tuple[Hub, Want]],
    after: list[int] | None,
    *,
    limit: int,
    heartbeat: float,
    connected: Callable[[list[int]], bytes],
    overflowed: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one client of a feed: ``connected``, what it missed after ``after``
    (default: nothing, it starts now), then live events, heartbeat comments when idle, and
    ``overflow`` when it fell behind. Leaves its hubs however it ends."""
    client = Client([want for _, want in sources], limit)
    hubs = [hub for hub, _ in sources]
    # Joining every hub happens at once (no await): nothing can slip between the ring, the
    # buffer and the stream reads below.
    positions = list(after) if after is not None else [hub.position for hub in hubs]
    backlog = [hub.join(client, i, positions[i]) for i, hub in enumerate(hubs)]
    bounds = [hub.oldest() for hub in hubs]  # older than this: read from the stream
    try:
        yield connected(positions)
        for i, hub in enumerate(hubs):
            want = client.wants[i]
            if positions[i] + 1 < bounds[i]:
                async for batch in hub.stored(positions[i], bounds[i]):
                    chunk = _chunk(batch, i, want, positions)
                    if chunk:
                        yield chunk
            chunk = _chunk(backlog[i], i, want, positions)
            if chunk:
                yield chunk
        backlog.clear()
        while True:
            if client.buffer:
                out = []
                buffer = client.buffer
                while buffer:
                    source, seq, rendered = buffer.popleft()
                    if seq <= positions[source]:
                        continue  # already sent from the ring or the stream
                    positions[source] = seq
                    out.append(b"id: %s\n%s" % (cursor(positions).encode(), rendered.frame))
                if out:
                    yield b"".join(out)
                continue
            if client.overflowed:
                overflowed()
                data = msgspec.json.encode({"lastEventId": cursor(positions), "buffer": limit})
                yield sse(OVERFLOW, data, cursor(positions))
                return
            client.wake.clear()
            try:
                async with asyncio.timeout(heartbeat):
                    await client.wake.wait()
            except TimeoutError:
                yield b": heartbeat\n\n"
    finally:
        for hub in hubs:
            hub.leave(client)


def _chunk(messages: list[Message], source: int, want: Want, positions: list[int]) -> bytes:
    out = []
    for message in messages:
        if message.seq <= positions[source]:
            continue
        positions[source] = message.seq
        rendered = message.get()
        if rendered is not None and want(rendered):
            out.append(b"id: %s\n%s" % (cursor(positions).encode(), rendered.frame))
    return b"".join(out)
