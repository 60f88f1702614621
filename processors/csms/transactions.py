"""1.6 transaction ids, kept in JetStream KV ``csms`` so every processor replica and restart agrees.

Ids come from a counter advanced with compare-and-set, so they are dense, start at 1 and fit the
32-bit integers chargers store. The id given to a StartTransaction is remembered under the
station and the call's unique id for a week, so a retried call gets the same id and no second
transaction; an id is "issued" when it lies between 1 and the counter.
"""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from evbus.counters import KvCounter
from schemas.subjects import kv_key

COUNTER = "transaction-counter"
IDEMPOTENCY_TTL_S = 7 * 24 * 3600.0


class KvTransactionIds:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._counter = KvCounter(kv, COUNTER)

    async def start(self, station: str, unique_id: str) -> int:
        key = f"start.{kv_key(station)}.{kv_key(unique_id)}"
        known = await self._get(key)
        if known is not None:
            return known
        transaction_id = await self._counter.next()
        try:
            await self._kv.create(key, str(transaction_id).encode(), msg_ttl=IDEMPOTENCY_TTL_S)
        except KeyWrongLastSequenceError:
            # another replica answered the same retry first: its id wins, ours stays unused
            winner = await self._get(key)
            if winner is not None:
                return winner
        return transaction_id

    async def issued(self, transaction_id: int) -> bool:
        return 0 < transaction_id <= await self._counter.current()

    async def _get(self, key: str) -> int | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        return int(entry.value) if entry.value else None


class MemoryTransactionIds:
    """The same contract in memory, for fast tests of handler logic."""

    def __init__(self) -> None:
        self._counter = 0
        self._started: dict[tuple[str, str], int] = {}

    async def start(self, station: str, unique_id: str) -> int:
        if (station, unique_id) not in self._started:
            self._counter += 1
            self._started[station, unique_id] = self._counter
        return self._started[station, unique_id]

    async def issued(self, transaction_id: int) -> bool:
        return 0 < transaction_id <= self._counter
