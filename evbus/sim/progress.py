"""What ``evbus sim`` shows while it runs (stderr) and when it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TextIO

from evbus.sim.simulator import Simulator
from evbus.sim.stats import Report

TTY_EVERY = 1.0
LOG_EVERY = 5.0


async def show_progress(sim: Simulator, stream: TextIO) -> None:
    """A status line redrawn every second on a terminal; a log line every 5 s otherwise."""
    tty = stream.isatty()
    every = TTY_EVERY if tty else LOG_EVERY
    stats = sim.stats
    last_at, last_count = time.monotonic(), stats.round_trips
    stats.window.reset()
    while True:
        await asyncio.sleep(every)
        if sim.stopping:
            return
        now = time.monotonic()
        rate = (stats.round_trips - last_count) / (now - last_at)
        last_at, last_count = now, stats.round_trips
        p99 = stats.window.quantile(0.99) * 1000
        stats.window.reset()
        errors = sum(stats.errors().values())
        line = (
            f"{sim.elapsed:5.0f}s  connected {stats.connected}/{sim.config.stations}"
            f"  booted {stats.booted}  rt/s {rate:,.0f}  p99 {p99:.1f} ms  errors {errors}"
            f"  reconnects {stats.reconnects}  csms calls {stats.csms_calls_answered}"
        )
        if sim.config.mode == "session":
            line += f"  sessions {stats.sessions_started}/{stats.sessions_completed}"
        if tty:
            stream.write("\r\x1b[K" + line)
        else:
            stream.write(f"evbus sim: {line}\n")
        stream.flush()


def format_report(report: Report, handshake_causes: Mapping[str, int] | None = None) -> str:
    """The end-of-run report as text; ``handshake_causes`` (Stats.handshake_causes) explains failed handshakes."""
    latency = report.latency_ms
    errors = ", ".join(f"{k} {v}" for k, v in report.errors.items() if v) or "none"
    if handshake_causes:
        causes = sorted(handshake_causes.items(), key=lambda item: -item[1])
        errors += " (handshakes: " + ", ".join(f"{cause} {n}" for cause, n in causes) + ")"
    lines = [
        f"evbus sim: {report.stations} stations, {report.protocol}, {report.mode} mode, {report.seconds:.1f} s",
        f"  connected      {report.connected}/{report.stations}   reconnects {report.reconnects}",
        f"  round trips    {report.round_trips:,}   ({report.round_trips_per_second:,.1f}/s)",
        f"  latency ms     p50 {latency.p50:.2f}   p95 {latency.p95:.2f}"
        f"   p99 {latency.p99:.2f}   max {latency.max:.2f}",
        f"  errors         {errors}",
        f"  CSMS calls     {report.csms_calls_answered} answered",
    ]
    if report.mode == "session":
        s = report.sessions
        lines.append(f"  sessions       {s.started} started, {s.completed} completed, {s.authorize_refused} refused")
        if s.authorize_refused and not s.started:
            lines.append(
                "                 (the CSMS refused every idTag: register them with `evbus token`,"
                " or run it with EVBUS_UNKNOWN_TOKENS=accept)"
            )
    return "\n".join(lines)
