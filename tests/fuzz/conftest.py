"""Fuzz and property tests: print what they tried (frames, API calls) and how many of them failed."""

from __future__ import annotations

import pytest

from tests.fuzz.tally import TRIED

_failed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and report.nodeid.startswith("tests/fuzz/"):
        _failed.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIED:
        return
    terminalreporter.section("fuzz")
    for what, count in sorted(TRIED.items()):
        terminalreporter.write_line(f"{what}: {count}")
    terminalreporter.write_line(f"failing fuzz tests: {len(_failed)}")
