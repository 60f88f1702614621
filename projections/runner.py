"""The projection runner: OCPP, EVENTS and TELEMETRY's readings in stream order into one DuckDB
file, exactly once.

Each stream is read by an ephemeral push consumer (:class:`evbus.push_reader.PushReader`, raw
deliveries, no nats-py message objects) that starts after the sequence stored in the file's
``checkpoints`` table. Messages collect in a column batch (:mod:`projections.batch`); a single
writer thread applies a batch and the new checkpoints in one DuckDB transaction
(:mod:`projections.fold`). A message at or below the sequence already taken is skipped, so a
consumer that restarts after a gap can never apply anything twice.

When to apply (the flush policy): a full batch (``batch_max``) at once, which is how a rebuild or a
restart catches up; otherwise when the oldest message waiting is ``flush_interval`` old, but not
before the writer has rested ``(1 - busy_max) / busy_max`` times as long as the last apply took
(at most ``rest_max``). An apply costs tens of milliseconds however small the batch (40-70 ms on a
read model of 1 M messages), so under a steady stream a fixed interval would keep DuckDB busy most
of the time; resting in proportion keeps it busy at most ``busy_max`` of the time and lets batches
grow instead, while a lone message after a quiet spell is applied ``flush_interval`` after it
arrived.

The position lives with the rows, not in a durable consumer: a restart, a copy of the file or a
rebuild all resume from what the file says (docs/adr/0005-projections.md).

TELEMETRY is read through the filter ``telemetry.*.*``: its readings, not the raw MQTT messages
beside them (about as many again, and nothing a read model needs). So its position is the last
*reading* taken, and "caught up" means up to the stream's last reading (:func:`head`), not its
last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

import duckdb
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from evbus.push_reader import PushReader, ReaderError, headers
from projections import fold, schema
from projections.batch import Batch
from schemas import subjects

log = logging.getLogger(__name__)

T = TypeVar("T")

STREAMS: Final = (subjects.STREAM_OCPP, subjects.STREAM_EVENTS, subjects.STREAM_TELEMETRY)
FILTERS: Final = {
    subjects.STREAM_OCPP: subjects.OCPP_ALL,
    subjects.STREAM_EVENTS: subjects.EVENTS_ALL,
    subjects.STREAM_TELEMETRY: subjects.TELEMETRY_READINGS,
}
_ADD: Final = {
    subjects.STREAM_OCPP: Batch.add_ocpp,
    subjects.STREAM_EVENTS: Batch.add_event,
    subjects.STREAM_TELEMETRY: Batch.add_reading,
}


async def head(js: JetStreamContext, stream: str) -> int:
    """The sequence of the last message of ``stream`` the projection reads (0 when there is none):
    the last one its filter matches (TELEMETRY: the last reading), and the last one still stored,
    so a tail removed by a purge (``nats stream purge --subject``) is not waited for forever."""
    try:
        return (await js.get_last_msg(stream, FILTERS[stream])).seq or 0
    except NotFoundError:
        return 0


async def stream_heads(js: JetStreamContext) -> dict[str, int]:
    """:func:`head` of every stream the projection reads: what "caught up" means now."""
    return {stream: await head(js, stream) for stream in STREAMS}


def _no_headers(_block: bytes) -> None:
    return None


def rest_after(took: float, busy_max: float, rest_max: float) -> float:
    """How long the writer rests after an apply that took ``took`` seconds, so that it is busy at
    most ``busy_max`` of the time (at most ``rest_max``: how stale a busy read model may get)."""
    return min(rest_max, took * (1 - busy_max) / busy_max)


class Projection:
    """Owns one DuckDB file: keeps it up to date with the streams and runs queries against it."""

    def __init__(
        self,
        nc: NATS,
        path: Path | str,
        *,
        batch_max: int = 20_000,
        flush_interval: float = 0.02,
        busy_max: float = 0.10,
        rest_max: float = 1.0,
        readers: int = 4,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.path = str(path)
        self.batch_max = batch_max
        self.flush_interval = flush_interval
        self.busy_max = busy_max
        self.rest_max = rest_max
        self.positions: dict[str, int] = dict.fromkeys(STREAMS, 0)  # applied and committed
        self._seen: dict[str, int] = dict.fromkeys(STREAMS, 0)  # taken into a batch
        self._batch = Batch()
        self._first_at = 0.0  # when the batch got its first message (loop time)
        self._filled = asyncio.Event()  # the batch has messages
        self._full = asyncio.Event()  # the batch has batch_max messages
        self._room = asyncio.Event()  # the batch is not full
        self._room.set()
        self._changed = asyncio.Condition()  # positions moved
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="projection-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="projection-reader")
        self._local = threading.local()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[None] | None = None
        self.retry_s = 0.5
        self.resubscribed = 0
        self.applied_messages = 0
        self.applies = 0
        self.apply_seconds = 0.0
        self.failures = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._con = await self._write(self._open)
        self.positions = await self._write(lambda con: {s: fold.checkpoints(con).get(s, 0) for s in STREAMS})
        self._seen = dict(self.positions)
        self._task = asyncio.create_task(self._flush_loop(), name="projection-flush")
        self._consumers = [
            asyncio.create_task(self._consume(stream), name=f"projection-{stream}") for stream in STREAMS
        ]
        log.info("projection %s resumes after %s", self.path, self.positions)

    def _open(self, _: object = None) -> duckdb.DuckDBPyConnection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = schema.connect(self.path)
        found = schema.version(con)
        if found is not None and found != schema.VERSION:
            log.warning("read model schema %s is not %s: rebuilding it from the stream", found, schema.VERSION)
            schema.drop(con)
        schema.create(con)
        return con

    async def stop(self) -> None:
        for task in [*self._consumers, self._task]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._consumers.clear()
        self._task = None
        if self._batch.size:  # what was taken but not yet written
            await self._apply(self._take())
        if self._con is not None:
            con, self._con = self._con, None
            await asyncio.get_running_loop().run_in_executor(self._writer, con.close)
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    async def __aenter__(self) -> Projection:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- consuming ------------------------------------------------------------------------------

    async def _consume(self, stream: str) -> None:
        """Read ``stream`` after the last sequence taken, for ever; a broken or stalled connection
        (no heartbeat), a missing delivery or a restarted server start a new consumer there."""
        add = _ADD[stream]
        parse = headers if stream != subjects.STREAM_TELEMETRY else _no_headers  # a reading's body says it all
        seen = self._seen
        loop = asyncio.get_running_loop()

        def take(subject: bytes, seq: int, stream_ns: int, _pending: int, block: bytes, data: bytes) -> bool:
            if seq <= seen[stream]:
                return False  # already taken: a consumer that restarted after a gap
            seen[stream] = seq
            batch = self._batch
            add(batch, seq, stream_ns, subject.decode(), parse(block), data)
            return batch.size >= self.batch_max

        while True:
            start = seen[stream] + 1
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
                opt_start_seq=start if start > 1 else None,
                filter_subject=FILTERS[stream],
            )
            try:
                async with PushReader.open(self.nc, stream, config) as reader:
                    while True:
                        await reader.read(take)
                        if self._batch.size and not self._filled.is_set():
                            self._first_at = loop.time()
                            self._filled.set()
                        while self._batch.size >= self.batch_max:
                            self._room.clear()
                            self._full.set()
                            await self._room.wait()
            except (ReaderError, OSError, TimeoutError) as exc:
                self.resubscribed += 1
                log.warning("%s consumer stopped after %s (%s); starting a new one", stream, seen[stream], exc)
                await asyncio.sleep(self.retry_s)
            except Exception:  # a message the batch could not take: it stays skipped, the rest goes on
                self.resubscribed += 1
                self.failures += 1
                log.exception("%s consumer failed after %s; starting a new one", stream, seen[stream])
                await asyncio.sleep(self.retry_s)

    def _take(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        self._filled.clear()
        self._full.clear()
        self._room.set()  # room for the consumers again
        return batch

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        rest_until = 0.0  # no apply starts before this unless the batch is full
        while True:
            await self._filled.wait()
            deadline = max(self._first_at + self.flush_interval, rest_until)
            while not self._full.is_set() and (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._full.wait()  # let a burst gather into one batch
            batch = self._take()
            started = loop.time()
            while True:
                try:
                    await self._apply(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    log.exception(
                        "projection batch up to %s/%s/%s failed; retrying",
                        batch.last_ocpp,
                        batch.last_events,
                        batch.last_telemetry,
                    )
                    await asyncio.sleep(1.0)
            rest_until = loop.time() + rest_after(loop.time() - started, self.busy_max, self.rest_max)

    async def _apply(self, batch: Batch) -> None:
        started = time.perf_counter()
        await self._write(lambda con: fold.apply(con, batch))
        self.apply_seconds += time.perf_counter() - started
        if batch.last_ocpp:
            self.positions[subjects.STREAM_OCPP] = batch.last_ocpp
        if batch.last_events:
            self.positions[subjects.STREAM_EVENTS] = batch.last_events
        if batch.last_telemetry:
            self.positions[subjects.STREAM_TELEMETRY] = batch.last_telemetry
        self.applied_messages += batch.size
        self.applies += 1
        async with self._changed:
            self._changed.notify_all()

    async def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        def run() -> T:
            return fn(self._con)  # type: ignore[arg-type]

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    # --- waiting --------------------------------------------------------------------------------

    async def wait_for(self, targets: dict[str, int], timeout: float = 10.0) -> None:
        """Wait until each stream in ``targets`` is applied up to its sequence."""

        def reached() -> bool:
            return all(self.positions.get(s, 0) >= seq for s, seq in targets.items())

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(reached)

    async def stream_heads(self) -> dict[str, int]:
        return await stream_heads(self.js)

    async def catch_up(self, timeout: float = 10.0) -> dict[str, int]:
        """Wait until everything stored when this was called is applied; return those heads."""
        heads = await self.stream_heads()
        await self.wait_for(heads, timeout)
        return heads

    # --- reading --------------------------------------------------------------------------------

    async def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn(cursor)`` on a reader thread; readers see committed batches only."""

        def run() -> T:
            cursor = getattr(self._local, "cursor", None)
            if cursor is None:
                if self._con is None:
                    raise RuntimeError("projection is not open")
                cursor = self._local.cursor = self._con.cursor()
                cursor.execute("SET TimeZone = 'UTC'")
            return fn(cursor)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)
