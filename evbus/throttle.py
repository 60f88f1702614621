"""Events that are themselves limited: at most one per interval and key, counting those held back.

What anyone on the network can cause (bad frames, failed handshakes and logins, refused uploads,
unreadable MQTT messages) is recorded, but never faster than this, so nobody floods the EVENTS
stream. Pure logic over a monotonic clock in seconds that the caller passes in.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

EVENT_INTERVAL_S: Final = 60.0  # one event of a kind per key (connection, address, device) per minute at most

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class EventThrottle:
    """At most one event per ``interval``; counts the ones it holds back."""

    interval: float = EVENT_INTERVAL_S
    last: float = -math.inf
    suppressed: int = 0

    def allow(self, now: float) -> int | None:
        """None: hold this event back (counted). Otherwise record it: the count held back since the last."""
        if now - self.last < self.interval:
            self.suppressed += 1
            return None
        held, self.suppressed, self.last = self.suppressed, 0, now
        return held


class Throttles(Generic[K]):
    """An :class:`EventThrottle` per key, at most ``max_keys`` of them: the least recently used
    tenth goes when the table is full (forgetting a key only lets its next event through early)."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._throttles: OrderedDict[K, EventThrottle] = OrderedDict()

    def __len__(self) -> int:
        return len(self._throttles)

    def allow(self, key: K, now: float) -> int | None:
        """:meth:`EventThrottle.allow` of ``key``'s throttle."""
        throttle = self._throttles.get(key)
        if throttle is None:
            if len(self._throttles) >= self.max_keys:
                for _ in range(max(1, self.max_keys // 10)):
                    self._throttles.popitem(last=False)
            throttle = self._throttles[key] = EventThrottle()
        else:
            self._throttles.move_to_end(key)
        return throttle.allow(now)
