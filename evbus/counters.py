"""Dense integer ids from a counter in JetStream KV, advanced with compare-and-set.

Every replica and restart agrees on them: transaction ids (1.6), reservation ids, request ids of
2.x messages, charging-profile ids. They start at 1 and fit the 32-bit integers chargers store.
"""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class KvCounter:
    def __init__(self, kv: KeyValue, key: str) -> None:
        self._kv = kv
        self.key = key

    async def next(self) -> int:
        """The next id: one more than any id this counter gave before."""
        while True:
            try:
                entry = await self._kv.get(self.key)
            except KeyNotFoundError:
                try:
                    await self._kv.create(self.key, b"1")
                    return 1
                except KeyWrongLastSequenceError:
                    continue
            value = int(entry.value or b"0") + 1
            try:
                await self._kv.update(self.key, str(value).encode(), last=entry.revision)
                return value
            except KeyWrongLastSequenceError:
                continue

    async def current(self) -> int:
        """The last id given, 0 before the first."""
        try:
            entry = await self._kv.get(self.key)
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")
