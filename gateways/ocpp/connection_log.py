"""Log lines about stations connecting and disconnecting: one per event while they are few, a count
once they are many.

A reconnect storm of 10 000 stations would otherwise write 20 000 lines (a disconnect and a connect
each) within seconds, each a LogRecord, a formatted time and a write to stderr. The stream keeps
every ``conn.*`` event anyway; the log only has to say what is going on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

LINES_PER_WINDOW: Final = 20
WINDOW_S: Final = 30.0


class ConnectionLog:
    """Up to ``lines`` INFO lines per ``window`` seconds; beyond that DEBUG, and one INFO summary."""

    def __init__(
        self,
        logger: logging.Logger,
        lines: int = LINES_PER_WINDOW,
        window: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._lines = lines
        self._window = window
        self._clock = clock
        self._started = clock()
        self._written = 0
        self._quiet = 0  # events over the limit in this window
        self._opened = 0
        self._closed = 0

    def connected(self, station: str, protocol: str, remote: str) -> None:
        self._roll()
        self._opened += 1
        self._line("%s connected (%s) from %s", station, protocol, remote)

    def disconnected(self, station: str, code: int, reason: str, frames: int) -> None:
        self._roll()
        self._closed += 1
        self._line("%s disconnected (%s %s) after %d frames", station, code, reason or "-", frames)

    def _roll(self) -> None:
        if self._clock() - self._started >= self._window:
            self.summary(None)

    def _line(self, text: str, *args: object) -> None:
        if self._written < self._lines:
            self._written += 1
            self._log.info(text, *args)
        else:
            self._quiet += 1
            self._log.debug(text, *args)

    def summary(self, connected: int | None) -> None:
        """End the window: one INFO line if events went unlogged in it (``connected``: stations now)."""
        now = self._clock()
        if self._quiet:
            held = "" if connected is None else f"{connected} stations connected; "
            self._log.info(
                "%sin the last %.0f s %d connections opened and %d closed (%d not logged one by one)",
                held,
                now - self._started,
                self._opened,
                self._closed,
                self._quiet,
            )
        self._started = now
        self._written = self._quiet = self._opened = self._closed = 0
