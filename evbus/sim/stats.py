"""Counters and latencies of a run, kept cheap: plain integers and a log-bucketed histogram.

A round trip costs one ``math.log`` and one list increment here, whatever the run's length, so a
simulator holding 10 000 connections for an hour keeps the same few kilobytes of statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Final

import msgspec

_GROWTH: Final = 1.01  # bucket width: 1 % of the value, so percentiles are exact to 1 %
_INV_LOG: Final = 1.0 / math.log(_GROWTH)
_BUCKETS: Final = int(math.log(1e9) * _INV_LOG) + 2  # 1 µs … 1000 s


class Histogram:
    """Latencies in seconds, in buckets of 1 % width from 1 µs to 1000 s."""

    __slots__ = ("count", "counts", "max")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        micros = seconds * 1e6
        index = int(math.log(micros) * _INV_LOG) + 1 if micros >= 1.0 else 0
        self.counts[index if index < _BUCKETS else _BUCKETS - 1] += 1
        self.count += 1
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) in seconds: the geometric middle of its bucket, at most the max."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                if index == _BUCKETS - 1:  # the overflow bucket: only the max is known
                    return self.max
                middle = 0.5e-6 if index == 0 else _GROWTH ** (index - 0.5) * 1e-6
                return min(middle, self.max)
        return self.max

    def reset(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.max = 0.0


class Stats:
    """Everything the stations of one run count. Single-threaded: plain attribute increments."""

    def __init__(self) -> None:
        self.latency = Histogram()  # send-to-answer of the stations' own CALLs, BootNotification excluded
        self.window = Histogram()  # the same since the progress line last looked
        self.round_trips = 0  # answered CALLs of ours, BootNotification excluded (== latency.count)
        self.connected = 0  # sockets open now
        self.booted = 0  # stations whose BootNotification was accepted on their current socket
        self.reconnects = 0  # successful connections after a station's first
        self.csms_calls_answered = 0
        self.call_errors = 0  # CALLERROR answers to our CALLs
        self.timeouts = 0  # our CALLs the CSMS did not answer in time
        self.disconnects = 0  # sockets that closed without us asking
        self.handshake_failures = 0  # connection attempts that did not open a websocket
        self.handshake_causes: Counter[str] = Counter()  # "timeout", "HTTP 503", "ConnectionRefusedError", …
        self.bad_frames = 0  # frames from the CSMS that are not OCPP-J
        self.boots_refused = 0  # BootNotification answered Pending or Rejected
        self.sessions_started = 0
        self.sessions_completed = 0
        self.authorize_refused = 0  # Authorize / transaction start answered with a status other than Accepted

    def answered(self, seconds: float) -> None:
        self.latency.record(seconds)
        self.window.record(seconds)
        self.round_trips += 1

    def handshake_failed(self, exc: BaseException) -> None:
        self.handshake_failures += 1
        status = getattr(getattr(exc, "response", None), "status_code", None)
        cause = f"HTTP {status}" if status else "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        self.handshake_causes[cause] += 1

    def errors(self) -> dict[str, int]:
        return {
            "callErrors": self.call_errors,
            "timeouts": self.timeouts,
            "disconnects": self.disconnects,
            "handshakeFailures": self.handshake_failures,
            "badFrames": self.bad_frames,
        }


class Latency(msgspec.Struct, frozen=True):
    p50: float
    p95: float
    p99: float
    max: float


class Sessions(msgspec.Struct, frozen=True, rename="camel"):
    started: int
    completed: int
    authorize_refused: int


class Report(msgspec.Struct, frozen=True, rename="camel"):
    """The end-of-run summary; ``--json`` prints exactly this as the last line of stdout."""

    stations: int
    protocol: str
    mode: str
    seconds: float
    connected: int
    round_trips: int
    round_trips_per_second: float
    latency_ms: Latency
    errors: dict[str, int]
    reconnects: int
    csms_calls_answered: int
    sessions: Sessions

    def json(self) -> str:
        return msgspec.json.encode(self).decode()

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


def report(stats: Stats, *, stations: int, protocol: str, mode: str, seconds: float, connected: int) -> Report:
    h = stats.latency
    return Report(
        stations=stations,
        protocol=protocol,
        mode=mode,
        seconds=round(seconds, 3),
        connected=connected,
        round_trips=stats.round_trips,
        round_trips_per_second=round(stats.round_trips / seconds, 1) if seconds > 0 else 0.0,
        latency_ms=Latency(
            p50=round(h.quantile(0.5) * 1000, 3),
            p95=round(h.quantile(0.95) * 1000, 3),
            p99=round(h.quantile(0.99) * 1000, 3),
            max=round(h.max * 1000, 3),
        ),
        errors=stats.errors(),
        reconnects=stats.reconnects,
        csms_calls_answered=stats.csms_calls_answered,
        sessions=Sessions(stats.sessions_started, stats.sessions_completed, stats.authorize_refused),
    )
