"""An in-memory mirror of a JetStream KV bucket, kept current by a watcher.

Hot paths (Authorize, handshakes) read the mirror instead of asking NATS for every frame; a change
made anywhere (CLI, API, another replica) reaches every mirror within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic, TypeVar

import msgspec
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from schemas.subjects import from_kv_key

log = logging.getLogger(__name__)

T = TypeVar("T")


class KvMirror(Generic[T]):
    def __init__(self, kv: KeyValue, kind: type[T]) -> None:
        self._kv = kv
        self._decoder = msgspec.json.Decoder(kind)
        self._values: dict[str, T] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, kind: type[T]) -> KvMirror[T]:
        mirror = cls(await js.key_value(bucket), kind)
        await mirror.start()
        return mirror

    async def start(self) -> None:
        watcher = await self._kv.watchall()
        self._task = asyncio.create_task(self._follow(watcher), name=f"kv-mirror-{self._kv._name}")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        try:
            async for entry in watcher:
                if entry is None:  # the initial values have all been delivered
                    self._ready.set()
                    continue
                key = from_kv_key(entry.key)
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    self._values.pop(key, None)
                    continue
                try:
                    self._values[key] = self._decoder.decode(entry.value)
                except msgspec.DecodeError:
                    log.warning("ignoring malformed value of %r in bucket %s", key, self._kv._name)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

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
