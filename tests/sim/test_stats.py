"""Latency percentiles within 1 %, the report's JSON shape, and the run's configuration rules."""

from __future__ import annotations

import random

import msgspec
import pytest

from evbus.sim.config import SimConfig
from evbus.sim.stats import Histogram, Stats, report


def test_histogram_percentiles_are_within_one_percent() -> None:
    rng = random.Random(5)
    samples = [rng.lognormvariate(-6, 1) for _ in range(20_000)]
    h = Histogram()
    for s in samples:
        h.record(s)
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        assert h.quantile(q) == pytest.approx(exact, rel=0.011)
    assert h.max == max(samples)
    assert h.count == len(samples)
    h.reset()
    assert (h.count, h.quantile(0.5)) == (0, 0.0)


def test_extremes_land_in_the_end_buckets() -> None:
    h = Histogram()
    h.record(0.0)
    h.record(5000.0)
    assert h.quantile(0.5) == pytest.approx(0.5e-6)
    assert h.quantile(1.0) == 5000.0


def test_report_json_has_the_promised_keys() -> None:
    stats = Stats()
    for ms in (1, 2, 3, 4):
        stats.answered(ms / 1000)
    stats.timeouts = 2
    encoded = report(stats, stations=3, protocol="ocpp1.6", mode="roundtrip", seconds=2.0, connected=3).json()
    decoded = msgspec.json.decode(encoded)
    assert list(decoded)[:12] == [
        "stations",
        "protocol",
        "mode",
        "seconds",
        "connected",
        "roundTrips",
        "roundTripsPerSecond",
        "latencyMs",
        "errors",
        "reconnects",
        "csmsCallsAnswered",
        "sessions",
    ]
    assert decoded["roundTrips"] == 4
    assert decoded["roundTripsPerSecond"] == 2.0
    assert set(decoded["latencyMs"]) == {"p50", "p95", "p99", "max"}
    assert decoded["latencyMs"]["max"] == 4.0
    assert decoded["errors"]["timeouts"] == 2
    assert {"callErrors", "timeouts", "disconnects", "handshakeFailures"} <= set(decoded["errors"])


def test_station_ids_and_urls() -> None:
    config = SimConfig(url="ws://127.0.0.1:9000/ocpp/", stations=3, prefix="CP.")
    assert config.station_ids() == ["CP.00001", "CP.00002", "CP.00003"]
    assert config.station_url("CP.00001") == "ws://127.0.0.1:9000/ocpp/CP.00001"
    assert config.station_url("A B") == "ws://127.0.0.1:9000/ocpp/A%20B"
    assert SimConfig(url="ws://x", mode="session").pace == 0.2
    assert SimConfig(url="ws://x", mode="roundtrip").pace == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "http://x"},
        {"url": "ws://x", "stations": 0},
        {"url": "ws://x", "protocol": "ocpp1.5"},
        {"url": "ws://x", "mode": "burst"},
        {"url": "ws://x", "rate": -1.0},
        {"url": "ws://x", "prefix": "P" * 44},
    ],
)
def test_configuration_mistakes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its own field
        SimConfig(**bad)  # type: ignore[arg-type]
