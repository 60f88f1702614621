"""Throttled events: one per interval and key, the held-back count in the next, a bounded table."""

from __future__ import annotations

from evbus.throttle import Throttles


def test_one_event_per_key_and_interval_counting_those_held_back() -> None:
    throttles: Throttles[str] = Throttles(max_keys=10)
    assert throttles.allow("a", 0.0) == 0
    assert throttles.allow("a", 1.0) is None
    assert throttles.allow("b", 1.0) == 0, "another key has its own throttle"
    assert throttles.allow("a", 2.0) is None
    assert throttles.allow("a", 61.0) == 2


def test_a_full_table_forgets_the_least_recently_used_keys() -> None:
    throttles: Throttles[int] = Throttles(max_keys=10)
    for key in range(10):
        throttles.allow(key, 0.0)
    throttles.allow(0, 1.0)  # used again: now the most recent
    throttles.allow(10, 1.0)  # full: key 1, the oldest, goes
    assert len(throttles) == 10
    assert throttles.allow(0, 2.0) is None, "kept"
    assert throttles.allow(1, 2.0) == 0, "forgotten: its next event goes through"
