"""Live feeds for the SSE routes: one reader per stream per process, fanned out to every client.

A :class:`Hub` reads one stream (``OCPP``, ``EVENTS``, or the readings of ``TELEMETRY``) from the
position it had when the API started, keeps the last :data:`RING` messages, and offers each message
to every client whose feed wants it. A message is rendered into its SSE event once, however many clients get it.

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
from typing import Any, Final, Literal, Protocol

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


def render_reading(seq: int, subject: bytes, block: bytes, data: bytes) -> Rendered | None:
    """A device's reading (``telemetry.{source}.{device}``) as a ``reading`` event: the reading as
    the gateway stored it, with the device's ``id`` (``{source}.{device}`` as the subject writes
    them, the id of ``/api/devices/{id}``) and the stream sequence, which the body cannot override."""
    names = subjects.reading_device(subject.decode())
    if names is None:
        return None
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    if not isinstance(body, dict):
        return None
    device_id, source, _ = names
    reading = {**body, "id": device_id, "seq": seq}
    return Rendered("reading", device_id, source, frame=sse("reading", _encode(reading)))


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


@dataclass(frozen=True, slots=True)
class Want:
    """Which rendered events of one stream a feed keeps: of these kinds (or not of those), with
    these field values. Equal filters are equal values, so the clients that share one share the
    events a hub writes (:meth:`Hub.flush`)."""

    kinds: frozenset[str] | None = None  # None: any kind not in ``not_kinds``
    not_kinds: frozenset[str] = frozenset()
    fields: tuple[tuple[str, str], ...] = ()  # (Rendered attribute, value)

    def __call__(self, r: Rendered) -> bool:
        if (self.kinds is not None and r.kind not in self.kinds) or r.kind in self.not_kinds:
            return False
        return all(getattr(r, name) == value for name, value in self.fields)


class Client:
    """One SSE client: its feed (hubs and filters), the cursor of what it got, and how it gets
    events. **Buffered** (while it catches up, and whenever its socket is slow): hubs put events
    into its bounded buffer and its own task sends them through the ASGI server. **Direct** (caught
    up, socket keeping up): hubs write events straight to its socket's transport, one pre-rendered
    chunk shared by every client of the same filter, with no task wake-up per event."""

    __slots__ = ("buffer", "direct", "hubs", "limit", "overflowed", "positions", "transport", "wake", "wants")

    def __init__(self, hubs: Sequence[Hub], wants: Sequence[Want], limit: int, transport: Transport | None) -> None:
        self.hubs = tuple(hubs)
        self.wants = tuple(wants)  # per source of its feed
        self.limit = limit
        self.transport = transport  # HTTP/1.1 chunked socket this client's answer is written to, if known
        self.positions: list[int] = []  # per source: the sequence its last event's cursor names
        self.buffer: deque[tuple[int, int, Rendered]] = deque()  # (source, seq, event)
        self.overflowed = False
        self.direct = False
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

    def go_direct(self) -> None:
        """Caught up with an empty buffer: from now on the hubs write to the socket."""
        self.direct = True
        for source, hub in enumerate(self.hubs):
            hub.group(self, source).add(self)

    def go_buffered(self, source: int, fresh: list[Message], before: int) -> None:
        """Back to the buffer, from ``fresh`` (messages of source ``source`` after ``before``) on:
        every event up to the hubs' positions is on the socket already."""
        self.leave_direct()
        self.positions = [hub.position for hub in self.hubs]
        self.positions[source] = before
        for message in fresh:
            self.offer(source, message)
        self.wake.set()

    def leave_direct(self) -> None:
        if self.direct:
            self.direct = False
            for source, hub in enumerate(self.hubs):
                hub.ungroup(self, source)


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...


TRANSPORT_KEY: Final = "evbus.transport"  # ASGI scope extension: the request's socket transport (api/app.py)
SLOW_BYTES: Final = 64 * 1024  # a socket with this much unsent is slow: its client goes back to the buffer


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
        # direct clients by what they share: feed (its hubs), source index and filter
        self.groups: dict[tuple[tuple[Hub, ...], int, Want], set[Client]] = {}
        self.delivered = 0
        self.written = 0  # chunks written straight to sockets
        self.slowed = 0  # direct clients sent back to their buffer by a slow socket
        self._fresh: list[Message] = []  # taken by the current read, not yet written
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
        self._fresh.append(message)
        for client, source in self.clients.items():
            if not client.direct:
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
                        before = self.position
                        try:
                            await reader.read(self._take)
                        finally:
                            self.flush(before)
            except (ReaderError, OSError, TimeoutError) as exc:
                log.warning(
                    "SSE reader of %s stopped after %s (%s); starting a new one", self.stream, self.position, exc
                )
            except Exception:
                log.exception("SSE reader of %s failed after %s; starting a new one", self.stream, self.position)
            await asyncio.sleep(self.retry_s)

    def flush(self, before: int) -> None:
        """Write what one read took (the sequences after ``before``) to the direct clients: one
        chunk per group, rendered once; a client whose socket is slow goes back to its buffer."""
        fresh, self._fresh = self._fresh, []
        if not fresh or not self.groups:
            return
        for (hubs, source, want), members in list(self.groups.items()):
            positions = [hub.position for hub in hubs]
            positions[source] = before
            chunk = _chunk(fresh, source, want, positions)
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunk else b""  # HTTP/1.1 chunked encoding
            for client in list(members):
                transport = client.transport
                assert transport is not None
                if transport.is_closing():
                    client.leave_direct()  # gone: its task ends when the server says so
                elif transport.get_write_buffer_size() > SLOW_BYTES:
                    client.go_buffered(source, fresh, before)
                    self.slowed += 1
                elif framed:
                    transport.write(framed)
                    self.written += 1

    def group(self, client: Client, source: int) -> set[Client]:
        return self.groups.setdefault((client.hubs, source, client.wants[source]), set())

    def ungroup(self, client: Client, source: int) -> None:
        key = (client.hubs, source, client.wants[source])
        members = self.groups.get(key)
        if members is not None:
            members.discard(client)
            if not members:
                del self.groups[key]

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
        self.readings = Hub(nc, subjects.STREAM_TELEMETRY, subjects.TELEMETRY_READINGS, render_reading)
        self.held: dict[str, int] = {}  # holder → open streams
        self.overflows = 0  # clients sent `overflow` since start
        self._telemetry = telemetry
        self._last: tuple[float, Any] | None = None
        self._computing = asyncio.Lock()

    async def start(self) -> None:
        for hub in self.hubs:
            await hub.start()

    async def stop(self) -> None:
        for hub in self.hubs:
            await hub.stop()

    @property
    def hubs(self) -> tuple[Hub, ...]:
        return (self.ocpp, self.events, self.readings)

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
    transport: Transport | None = None,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one client of a feed: ``connected``, what it missed after ``after``
    (default: nothing, it starts now), then live events, heartbeat comments every ``heartbeat``
    seconds, and ``overflow`` when it fell behind. Leaves its hubs however it ends.

    With ``transport`` (the socket of an HTTP/1.1 answer whose head the server has written), a
    client that caught up gets live events written there by the hubs (:class:`Client`); this
    generator then only yields heartbeats, and takes over again whenever the socket is slow."""
    hubs = [hub for hub, _ in sources]
    client = Client(hubs, [want for _, want in sources], limit, transport)
    # Joining every hub happens at once (no await): nothing can slip between the ring, the
    # buffer and the stream reads below.
    client.positions = positions = list(after) if after is not None else [hub.position for hub in hubs]
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
                buffer, positions = client.buffer, client.positions
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
                last = cursor(client.positions)
                yield sse(OVERFLOW, msgspec.json.encode({"lastEventId": last, "buffer": limit}), last)
                return
            if (
                transport is not None
                and not client.direct
                and not transport.is_closing()
                and transport.get_write_buffer_size() <= SLOW_BYTES
            ):
                client.go_direct()  # everything yielded so far is on the socket: the server wrote it
            client.wake.clear()
            try:
                async with asyncio.timeout(heartbeat):
                    await client.wake.wait()
            except TimeoutError:
                yield b": heartbeat\n\n"
    finally:
        client.leave_direct()
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
