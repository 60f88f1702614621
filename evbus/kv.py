"""JetStream KV buckets read without nats-py's watcher race, and an in-memory mirror of one.

nats-py's ``kv.watchall()`` (and ``kv.keys()``, built on it) ends its initial values with a ``None``
marker that can come too early (nats-io/nats.py#842, #995): at set-up it compares the server's
pending count with the messages the client has *processed*, and later it trusts each message's
pending count, which under concurrent writes reaches 0 and rises again. Seen here as "no MQTT
gateway is running" while one was. :func:`read_all` reads the newest entry of every key with a
*pull* consumer instead: nothing is delivered until asked for, so the pending count taken when it
is made is exact, and that many entries are the whole bucket. :class:`Changes` then follows the
bucket from the sequence that snapshot ran to, so nothing falls between the two.

Hot paths (Authorize, handshakes) read a :class:`KvMirror` instead of asking NATS for every frame;
a change made anywhere (CLI, API, another replica) reaches every mirror within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Generic, NamedTuple, TypeVar

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from schemas.subjects import from_kv_key

log = logging.getLogger(__name__)

T = TypeVar("T")

FETCH_BATCH = 1024
FETCH_TIMEOUT_S = 5.0


class Entry(NamedTuple):
    key: str  # the bucket's key, still encoded (schemas.subjects.kv_key)
    value: bytes
    revision: int  # the stream sequence
    deleted: bool  # a delete or purge marker (or an empty value): the key has no value


def _entry(prefix: str, msg: Msg) -> Entry:
    headers = msg.headers or {}
    operation = headers.get("KV-Operation")
    if operation is None and "Nats-Marker-Reason" in headers:  # the server removed it (TTL, purge)
        operation = "PURGE"
    return Entry(
        key=msg.subject[len(prefix) :],
        value=msg.data,
        revision=msg.metadata.sequence.stream,
        deleted=operation in ("DEL", "PURGE") or not msg.data,
    )


def _where(kv: KeyValue) -> tuple[JetStreamContext, str, str]:
    """The bucket's JetStream context, stream and subject prefix (nats-py keeps them private)."""
    return kv._js, kv._stream, kv._pre


async def read_all(kv: KeyValue) -> tuple[dict[str, Entry], int]:
    """The newest entry of every key (deleted ones included, so a follower can drop them), and the
    stream sequence they are complete up to: :func:`changes` after it misses nothing."""
    js, stream, prefix = _where(kv)
    upto = (await js.stream_info(stream)).state.last_seq
    config = api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=api.AckPolicy.NONE,
        inactive_threshold=30.0,  # gone by itself should the delete below not reach the server
        mem_storage=True,
    )
    pull = await js.pull_subscribe(f"{prefix}>", stream=stream, config=config)
    entries: dict[str, Entry] = {}
    try:
        # The entries pending when the consumer was made, counted before anything is delivered (a
        # pull consumer delivers nothing until asked): the first that many are the whole bucket as
        # of then, and everything they run up to. Per-message pending counts are not used: under
        # concurrent writes they can reach 0 and rise again.
        expected = (await pull.consumer_info()).num_pending or 0
        seen = 0
        while seen < expected:
            try:
                batch = await pull.fetch(min(expected - seen, FETCH_BATCH), timeout=FETCH_TIMEOUT_S)
            except nats.errors.TimeoutError:  # some expired or were purged meanwhile: all there is was read
                break
            for msg in batch:
                entry = _entry(prefix, msg)
                entries[entry.key] = entry
                upto = max(upto, entry.revision)
            seen += len(batch)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, pull._consumer)
        with contextlib.suppress(Exception):
            await pull.unsubscribe()
    return entries, upto


async def current(kv: KeyValue) -> dict[str, bytes]:
    """Every key that has a value now, and its value."""
    entries, _ = await read_all(kv)
    return {key: entry.value for key, entry in entries.items() if not entry.deleted}


class Changes:
    """Every entry written to a bucket after a stream sequence, in order (an ordered consumer,
    which nats-py re-makes after a gap or a lost connection)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Entry] = asyncio.Queue()
        self._sub: JetStreamContext.PushSubscription | None = None

    @classmethod
    async def after(cls, kv: KeyValue, revision: int) -> Changes:
        js, stream, prefix = _where(kv)
        changes = cls()

        async def arrived(msg: Msg) -> None:
            changes._queue.put_nowait(_entry(prefix, msg))

        changes._sub = await js.subscribe(
            f"{prefix}>",
            stream=stream,
            cb=arrived,
            ordered_consumer=True,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=revision + 1,
                inactive_threshold=300.0,
            ),
        )
        return changes

    def __aiter__(self) -> AsyncIterator[Entry]:
        return self._entries()

    async def _entries(self) -> AsyncIterator[Entry]:
        while True:
            yield await self._queue.get()

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


class KvMirror(Generic[T]):
    def __init__(self, kv: KeyValue, kind: type[T]) -> None:
        self._kv = kv
        self._decoder = msgspec.json.Decoder(kind)
        self._values: dict[str, T] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, kind: type[T]) -> KvMirror[T]:
        mirror = cls(await js.key_value(bucket), kind)
        await mirror.start()
        return mirror

    async def start(self) -> None:
        entries, upto = await read_all(self._kv)
        for entry in entries.values():
            self._apply(entry)
        changes = await Changes.after(self._kv, upto)
        self._task = asyncio.create_task(self._follow(changes), name=f"kv-mirror-{self._kv._name}")

    def _apply(self, entry: Entry) -> None:
        key = from_kv_key(entry.key)
        if entry.deleted:
            self._values.pop(key, None)
            return
        try:
            self._values[key] = self._decoder.decode(entry.value)
        except msgspec.DecodeError:
            log.warning("ignoring malformed value of %r in bucket %s", key, self._kv._name)

    async def _follow(self, changes: Changes) -> None:
        try:
            async for entry in changes:
                self._apply(entry)
        finally:
            await changes.stop()

    @property
    def kv(self) -> KeyValue:
        """The bucket this mirror follows, for writes."""
        return self._kv

    def get(self, key: str) -> T | None:
        return self._values.get(key)

    def values(self) -> list[T]:
        return list(self._values.values())

    def remember(self, key: str, value: T) -> None:
        """This process's own write, known before the watcher delivers it (its copy then replaces this)."""
        self._values[key] = value

    def forget(self, key: str) -> None:
        """This process's own delete, before the watcher delivers it."""
        self._values.pop(key, None)

    def __len__(self) -> int:
        return len(self._values)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
