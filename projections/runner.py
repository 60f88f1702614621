"""The projection runner: OCPP and EVENTS in stream order into one DuckDB file, exactly once.

Each stream is read by an ordered push consumer that starts after the sequence stored in the
file's ``checkpoints`` table. Messages collect in a column batch (:mod:`projections.batch`); a
single writer thread applies a batch and the new checkpoints in one DuckDB transaction
(:mod:`projections.fold`). Under load batches grow (up to ``batch_max``), when idle a frame is
visible within ``flush_interval``. A message at or below the applied sequence is skipped, so a
consumer that restarts after a gap can never apply anything twice.

The position lives with the rows, not in a durable consumer: a restart, a copy of the file or a
rebuild all resume from what the file says (docs/adr/0005-projections.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import duckdb
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from projections import fold, schema
from projections.batch import Batch
from schemas import streams, subjects

log = logging.getLogger(__name__)

T = TypeVar("T")

STREAMS: Final = (subjects.STREAM_OCPP, subjects.STREAM_EVENTS)
_FILTERS: Final = {subjects.STREAM_OCPP: subjects.OCPP_ALL, subjects.STREAM_EVENTS: subjects.EVENTS_ALL}


class Projection:
    """Owns one DuckDB file: keeps it up to date with the streams and runs queries against it."""

    def __init__(
        self,
        nc: NATS,
        path: Path | str,
        *,
        batch_max: int = 20_000,
        flush_interval: float = 0.02,
        readers: int = 4,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.path = str(path)
        self.batch_max = batch_max
        self.flush_interval = flush_interval
        self.positions: dict[str, int] = dict.fromkeys(STREAMS, 0)  # applied and committed
        self._seen: dict[str, int] = dict.fromkeys(STREAMS, 0)  # taken into a batch
        self._batch = Batch()
        self._changed = asyncio.Condition()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="projection-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="projection-reader")
        self._local = threading.local()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._subs: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.stall_check_s = 5.0
        self.resubscribed = 0
        self.applied_messages = 0
        self.failures = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._con = await self._write(self._open)
        self.positions = await self._write(lambda con: {s: fold.checkpoints(con).get(s, 0) for s in STREAMS})
        self._seen = dict(self.positions)
        self._task = asyncio.create_task(self._flush_loop(), name="projection-flush")
        self._subs = [await self._subscribe(stream) for stream in STREAMS]
        self._watchdog = asyncio.create_task(self._watch(), name="projection-watchdog")
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
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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

    async def _subscribe(self, stream: str) -> Any:
        start = self._seen[stream] + 1
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
            opt_start_seq=start if start > 1 else None,
        )
        add = Batch.add_ocpp if stream == subjects.STREAM_OCPP else Batch.add_event

        async def on_message(msg: Msg) -> None:
            seq, stream_ns, _ = streams.delivery(msg.reply)
            if seq <= self._seen[stream]:
                return  # already taken: an ordered consumer that restarted after a gap
            self._seen[stream] = seq
            add(self._batch, seq, stream_ns, msg.subject, msg.headers, msg.data)
            if self._batch.size >= self.batch_max:
                async with self._changed:
                    self._changed.notify_all()
                    await self._changed.wait_for(lambda: self._batch.size < self.batch_max)
            elif self._batch.size == 1:
                async with self._changed:
                    self._changed.notify_all()

        return await self.js.subscribe(
            _FILTERS[stream],
            stream=stream,
            cb=on_message,
            ordered_consumer=True,
            config=config,
        )

    async def _watch(self) -> None:
        """Resubscribe a stream whose consumer stopped delivering while messages wait.

        An ordered consumer normally heals itself after a gap; this covers the cases where it does
        not (a slow-consumer drop at the very end of a burst, a server restart). Nothing can be
        applied twice: the new consumer starts after the last sequence taken.
        """
        last = dict(self._seen)
        while True:
            await asyncio.sleep(self.stall_check_s)
            for i, stream in enumerate(STREAMS):
                if self._seen[stream] != last[stream] or self._batch.size >= self.batch_max:
                    continue
                try:
                    head = (await self.js.stream_info(stream)).state.last_seq
                    if head > self._seen[stream]:
                        log.warning("%s consumer stalled at %s of %s; resubscribing", stream, self._seen[stream], head)
                        with contextlib.suppress(Exception):
                            await self._subs[i].unsubscribe()
                        self._subs[i] = await self._subscribe(stream)
                        self.resubscribed += 1
                except Exception:
                    log.exception("projection watchdog")
            last = dict(self._seen)

    def _take(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        return batch

    async def _flush_loop(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._batch.size > 0)
            if self._batch.size < self.batch_max:
                await asyncio.sleep(self.flush_interval)  # let a burst gather into one batch
            batch = self._take()
            async with self._changed:
                self._changed.notify_all()  # room for the consumers again
            while True:
                try:
                    await self._apply(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    log.exception("projection batch up to %s/%s failed; retrying", batch.last_ocpp, batch.last_events)
                    await asyncio.sleep(1.0)

    async def _apply(self, batch: Batch) -> None:
        await self._write(lambda con: fold.apply(con, batch))
        if batch.last_ocpp:
            self.positions[subjects.STREAM_OCPP] = batch.last_ocpp
        if batch.last_events:
            self.positions[subjects.STREAM_EVENTS] = batch.last_events
        self.applied_messages += batch.size
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
        heads = {}
        for stream in STREAMS:
            info = await self.js.stream_info(stream)
            heads[stream] = info.state.last_seq
        return heads

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
