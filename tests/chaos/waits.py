"""Bounded waiting: poll a condition until it holds, never sleep for synchronisation."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> float:
    """Poll ``check`` (plain or async) until it returns something truthy; the seconds that took.
    Fails after ``timeout`` seconds, showing the last value."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return time.monotonic() - started
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {timeout} s (last value: {last!r})")


BUDGET_S = 85.0  # each fault test's bound: its body runs under asyncio.timeout(BUDGET_S)
