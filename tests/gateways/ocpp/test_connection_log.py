"""Connect/disconnect log lines: each one while they are few, a count once they are many."""

from __future__ import annotations

import logging

import pytest

from gateways.ocpp.connection_log import ConnectionLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger("tests.connection_log")


def infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def test_a_few_connections_are_logged_one_by_one(caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> None:
    caplog.set_level(logging.INFO, logger.name)
    events = ConnectionLog(logger, lines=3, window=30.0, clock=Clock())
    events.connected("CP-1", "ocpp1.6", "10.0.0.1:5000")
    events.disconnected("CP-1", 1006, "", 7)
    events.summary(0)
    assert infos(caplog) == [
        "CP-1 connected (ocpp1.6) from 10.0.0.1:5000",
        "CP-1 disconnected (1006 -) after 7 frames",
    ]  # nothing went unlogged: no summary


def test_a_storm_is_counted_not_logged_line_by_line(caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> None:
    caplog.set_level(logging.DEBUG, logger.name)
    clock = Clock()
    events = ConnectionLog(logger, lines=2, window=30.0, clock=clock)
    for n in range(10):
        events.disconnected(f"CP-{n}", 1006, "", 3)
    for n in range(10):
        events.connected(f"CP-{n}", "ocpp2.0.1", "10.0.0.1:5000")
    clock.now += 12
    events.summary(10)
    lines = infos(caplog)
    assert len(lines) == 3
    assert lines[-1] == (
        "10 stations connected; in the last 12 s 10 connections opened and 10 closed (18 not logged one by one)"
    )
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 18  # still there at DEBUG

    caplog.clear()
    events.connected("CP-0", "ocpp2.0.1", "10.0.0.1:5001")  # a new window logs again
    assert infos(caplog) == ["CP-0 connected (ocpp2.0.1) from 10.0.0.1:5001"]


def test_a_window_ends_on_its_own_when_no_summary_is_asked_for(
    caplog: pytest.LogCaptureFixture, logger: logging.Logger
) -> None:
    caplog.set_level(logging.INFO, logger.name)
    clock = Clock()
    events = ConnectionLog(logger, lines=1, window=30.0, clock=clock)
    events.connected("CP-1", "ocpp1.6", "a")
    events.connected("CP-2", "ocpp1.6", "b")
    clock.now += 31
    events.connected("CP-3", "ocpp1.6", "c")
    assert infos(caplog) == [
        "CP-1 connected (ocpp1.6) from a",
        "in the last 31 s 2 connections opened and 0 closed (1 not logged one by one)",
        "CP-3 connected (ocpp1.6) from c",
    ]
