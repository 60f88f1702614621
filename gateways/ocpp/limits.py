"""What one station or one address may ask of the gateway: token buckets, and security events that
are themselves limited, so a misbehaving station cannot flood the ``EVENTS`` stream.

- **Messages per connection** (``EVBUS_STATION_RATE``/``EVBUS_STATION_BURST``): a frame over the
  limit is still stored and answered (nothing is lost); the first one records a ``rate_limited``
  security event (then at most one per connection per minute, counting the frames over since), and
  a station that keeps sending faster, :data:`DISCONNECT_AFTER_BURSTS` bursts' worth of frames over
  the limit before its bucket has refilled, is disconnected with close code 1008 (policy violation).
- **Bad frames per connection**: every malformed frame is stored and answered as before; the
  ``bad_frame`` event is recorded at most once per :data:`EVENT_INTERVAL_S` per connection, with the
  count of the ones not reported since.
- **Handshakes per remote address** (``EVBUS_HANDSHAKE_RATE``/``EVBUS_HANDSHAKE_BURST``): over the
  limit, HTTP 429 and a ``rate_limited`` event (at most one per address per minute).
- **Failed TLS handshakes per remote address**: each one ends its connection; the ``tls_failed``
  event is recorded at most once per :data:`EVENT_INTERVAL_S` per address, with the count of the
  ones not reported since (kept in the same table of addresses, whatever the handshake rate).

Pure logic over a monotonic clock in seconds that the caller passes in (the gateway passes
``time.monotonic()``, tests plain numbers). A rate of 0 turns a limit off.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from evbus.throttle import EventThrottle

DISCONNECT_AFTER_BURSTS: Final = 10  # frames over the limit, in bursts, before the socket is closed
CLOSE_POLICY_VIOLATION: Final = 1008
MAX_ADDRESSES: Final = 10_000  # handshake buckets kept; idle (refilled) ones and then the oldest go first
PRUNE_AT_LEAST: Final = 1024  # per-connection state for closed sockets kept before a sweep

K = TypeVar("K")


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, up to ``burst``; each message takes one."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst

    def wait(self, now: float) -> float:
        """Seconds until the next token."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do besides storing the frame: record ``event`` (a security-event detail), close the socket."""

    event: str | None = None
    disconnect: bool = False


WITHIN: Final = Verdict()


@dataclass(slots=True)
class ConnectionLimits:
    """One socket's message bucket, its count of frames over the limit, and its event throttles."""

    bucket: TokenBucket | None  # None: no message-rate limit
    excess: int = 0  # frames over the limit since the bucket was last full
    disconnected: bool = False  # the verdict to close was given; frames still buffered are only stored
    rate_events: EventThrottle = field(default_factory=EventThrottle)
    bad_frames: EventThrottle = field(default_factory=EventThrottle)

    def inbound(self, now: float) -> Verdict:
        """Account for one frame from the station."""
        bucket = self.bucket
        if bucket is None or self.disconnected:
            return WITHIN
        if bucket.is_full(now):
            self.excess = 0  # it slowed down long enough to earn a whole burst back
        if bucket.take(now):
            return WITHIN
        self.excess += 1
        limit = f"{bucket.rate:g} messages/s (burst {bucket.burst:g})"
        if self.excess >= DISCONNECT_AFTER_BURSTS * bucket.burst:
            self.disconnected = True
            return Verdict(f"disconnected (close code 1008): {self.excess} messages over {limit}", disconnect=True)
        held = self.rate_events.allow(now)
        if held is None:
            return WITHIN
        more = f", {held} more since the last event" if held else ""
        return Verdict(f"over {limit}: message stored and answered{more}")

    def bad_frame(self, reason: str, now: float) -> str | None:
        """The ``bad_frame`` event's detail, or None to hold it back."""
        held = self.bad_frames.allow(now)
        if held is None:
            return None
        return f"{reason} ({held} more bad frames since the last event)" if held else reason


class ConnectionTable(Generic[K]):
    """:class:`ConnectionLimits` per socket, made on its first frame. Closed sockets' entries are
    swept when the table has grown to twice the live ones (and at least :data:`PRUNE_AT_LEAST`)."""

    def __init__(self, rate: float, burst: float, alive: Callable[[K], bool]) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._alive = alive
        self._limits: dict[K, ConnectionLimits] = {}
        self._sweep_at = PRUNE_AT_LEAST

    def __len__(self) -> int:
        return len(self._limits)

    def of(self, key: K, now: float) -> ConnectionLimits:
        limits = self._limits.get(key)
        if limits is None:
            if len(self._limits) >= self._sweep_at:
                self._limits = {k: v for k, v in self._limits.items() if self._alive(k)}
                self._sweep_at = max(PRUNE_AT_LEAST, 2 * len(self._limits))
            bucket = TokenBucket.full(self.rate, self.burst, now) if self.rate > 0 else None
            limits = self._limits[key] = ConnectionLimits(bucket)
        return limits


@dataclass(frozen=True, slots=True)
class Refused:
    """A handshake over the address's limit: answer 429 with ``Retry-After``, record ``event`` if set."""

    retry_after: int
    event: str | None


@dataclass(slots=True)
class AddressLimits:
    """One remote address's handshake bucket and its event throttles."""

    bucket: TokenBucket
    refused: EventThrottle = field(default_factory=EventThrottle)  # rate_limited events
    tls_failures: EventThrottle = field(default_factory=EventThrottle)  # tls_failed events

    def is_idle(self, now: float) -> bool:
        """As good as new: the bucket refilled and no event throttle holds anything back."""
        return self.bucket.is_full(now) and all(now - t.last >= t.interval for t in (self.refused, self.tls_failures))


class HandshakeLimits:
    """A token bucket per remote address (IP, without the port), and the throttles of its events."""

    def __init__(self, rate: float, burst: float, max_addresses: int = MAX_ADDRESSES) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_addresses = max_addresses
        self._addresses: OrderedDict[str, AddressLimits] = OrderedDict()

    def __len__(self) -> int:
        return len(self._addresses)

    def admit(self, address: str, now: float) -> Refused | None:
        """None: go ahead. Otherwise refuse this handshake."""
        if self.rate <= 0:
            return None
        limits = self._of(address, now)
        if limits.bucket.take(now):
            return None
        held = limits.refused.allow(now)
        event = None
        if held is not None:
            more = f"; {held} more refused since the last event" if held else ""
            event = f"handshakes over {self.rate:g}/s (burst {self.burst:g}) from {address}: HTTP 429{more}"
        return Refused(retry_after=max(1, math.ceil(limits.bucket.wait(now))), event=event)

    def tls_failed(self, address: str, reason: str, now: float) -> str | None:
        """A TLS handshake from ``address`` failed: the ``tls_failed`` event's detail, or None to
        hold it back (counted in the address's next event)."""
        held = self._of(address, now).tls_failures.allow(now)
        if held is None:
            return None
        return f"{reason} ({held} more failed TLS handshakes from {address} since the last event)" if held else reason

    def _of(self, address: str, now: float) -> AddressLimits:
        limits = self._addresses.get(address)
        if limits is None:
            self._make_room(now)
            limits = self._addresses[address] = AddressLimits(TokenBucket.full(self.rate, self.burst, now))
        else:
            self._addresses.move_to_end(address)
        return limits

    def _make_room(self, now: float) -> None:
        if len(self._addresses) < self.max_addresses:
            return
        # idle addresses are as good as new: forget them first, then the oldest (a tenth of the
        # table at once, so a stream of new addresses does not sweep on each one). An address that
        # only fails TLS handshakes never spends its bucket: its throttle must not count as idle.
        for address in [a for a, limits in self._addresses.items() if limits.is_idle(now)]:
            del self._addresses[address]
        while len(self._addresses) > self.max_addresses * 9 // 10:
            self._addresses.popitem(last=False)


def address_of(remote: str) -> str:
    """``203.0.113.9:53211`` → ``203.0.113.9`` (``::1:53211`` → ``::1``)."""
    host, sep, port = remote.rpartition(":")
    return host if sep and port.isdigit() else remote
