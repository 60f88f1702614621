"""The device read model without a server: readings fold into each device's latest snapshot, a
time series and charging sessions, the same wherever batch boundaries fall; replays of retained
values open nothing; the queries serve what the tables hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import msgspec
import pytest

from projections import devices, queries
from projections.batch import Batch
from tests.projections.synthetic import T0, Message, at, device_traffic, raw, reading
from tests.projections.test_fold import folded, fresh, tables

DEVICES = 3
E0 = 10_000.0  # device 0's energy counter at the start


@pytest.fixture(scope="module")
def stream() -> list[Message]:
    return device_traffic(DEVICES)


@pytest.fixture(scope="module")
def once(stream: list[Message]) -> duckdb.DuckDBPyConnection:
    return folded(stream, len(stream))


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return con.execute(sql, list(params)).fetchall()


def as_json(value: object) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


@pytest.mark.parametrize("batch_size", [1, 2, 7, 40])
def test_batch_boundaries_change_nothing(
    stream: list[Message], once: duckdb.DuckDBPyConnection, batch_size: int
) -> None:
    expected = tables(once)
    assert expected["devices"]
    assert expected["readings"]
    assert expected["device_sessions"]
    assert tables(folded(stream, batch_size)) == expected


# --- the snapshot -----------------------------------------------------------------------------


def test_the_newest_reading_wins_whole(once: duckdb.DuckDBPyConnection) -> None:
    (lp,) = [d for d in devices.devices(once)[0] if d.id == "evcc.lp0"]
    assert as_json(lp) == {
        "id": "evcc.lp0",
        "source": "evcc",
        "device": "lp0",
        "kind": "evse",
        "firstSeenAt": at(0),
        "updatedAt": at(2200),
        "lastSeenAt": at(2200),
        "connected": True,  # the device is there
        "vehicleConnected": True,  # a vehicle is plugged in
        "online": True,
        "state": None,
        "stateRaw": None,
        "charging": True,
        "enabled": None,
        "powerW": 3600.0,
        "energyWh": E0 + 3800,
        "sessionEnergyWh": 100.0,
        "currentsA": None,  # erased by evcc's restart, not reported since
        "voltagesV": None,
        "socPct": None,
        "offeredCurrentA": None,
        "phases": None,
        "temperatureC": None,
        "errors": None,
        "mode": None,
        "title": "Garage 0",
        "extra": None,
        "flags": None,
        "retained": False,
    }
    detail = devices.device(once, "evcc.lp0")
    assert detail is not None
    stored = msgspec.json.decode(bytes(detail.reading))  # type: ignore[arg-type]
    assert (stored["ts"], stored["powerW"], stored["rawTopic"]) == (at(2200), 3600, "evcc/lp0")
    assert [r.ts for r in detail.recent_readings][:2] == [at(2200), at(2100.1)]
    assert [s.transaction_id for s in detail.sessions] == ["mqtt:evcc.lp0:2", "mqtt:evcc.lp0:1"]
    assert devices.device(once, "evcc.nope") is None


def test_evcc_restart_burst_leaves_values_unset_not_zero(stream: list[Message]) -> None:
    upto = next(i for i, m in enumerate(stream) if m.subject == "telemetry.evcc.lp0" and at(2000).encode() in m.data)
    con = folded(stream[: upto + 1], 5)
    snapshot = (
        "SELECT power_w, energy_wh, session_energy_wh, soc_pct, connected, charging, title FROM devices WHERE id = ?"
    )
    assert rows(con, snapshot, "evcc.lp0") == [(None, None, None, None, None, None, None)]
    last = "SELECT power_w, energy_wh, connected FROM readings WHERE device_id = ? ORDER BY seq DESC LIMIT 1"
    assert rows(con, last, "evcc.lp0") == [(None, None, None)]


def test_devices_filter_and_page(once: duckdb.DuckDBPyConnection) -> None:
    everything, total = devices.devices(once)
    assert total == 2 * DEVICES
    assert [d.id for d in everything] == sorted(d.id for d in everything)
    evcc, total = devices.devices(once, source="evcc", page=queries.Page(limit=2))
    assert (len(evcc), total) == (2, DEVICES)
    assert devices.devices(once, status="disconnected") == ([], 0)
    assert devices.devices(once, status="connected")[1] == 2 * DEVICES


def test_raw_messages_and_bodies_that_are_no_reading_are_not_folded(once: duckdb.DuckDBPyConnection) -> None:
    assert rows(once, "SELECT count(*) FROM readings WHERE device_id LIKE 'raw.%'") == [(0,)]
    per_device = rows(once, "SELECT device_id, count(*) FROM readings GROUP BY ALL ORDER BY ALL")
    assert per_device[0] == ("evcc.lp0", 9)
    assert ("openevse.oe0", 6) in per_device  # its seventh message was no JSON object
    assert rows(once, "SELECT max(seq) FROM checkpoints") != [(None,)]


def test_a_reading_from_anywhere_cannot_fail_a_batch() -> None:
    odd = [
        Message("telemetry.x.y", {}, b'{"powerW": "lots", "currentsA": 5, "ts": "yesterday", "connected": 1}'),
        Message("telemetry.x.y", {}, b"[1, 2]"),
        Message("telemetry.x.y", {}, b"\xff\xfe"),
        Message("telemetry.x%2.y", {}, b"{}"),
    ]
    con = folded(odd, 10)
    assert rows(con, "SELECT id, power_w, currents_a FROM devices ORDER BY ALL") == [
        ("x%2.y", None, None),
        ("x.y", None, None),
    ]


# --- sessions ---------------------------------------------------------------------------------


def sessions(con: duckdb.DuckDBPyConnection, device_id: str) -> list[tuple[Any, ...]]:
    return rows(
        con,
        """SELECT n, trigger, started_at, stopped_at, meter_start, meter_stop, session_energy_wh, status
        FROM device_sessions WHERE device_id = ? ORDER BY n""",
        device_id,
    )


def naive(seconds: float) -> datetime:
    return (T0 + timedelta(seconds=seconds)).replace(tzinfo=None)


def test_sessions_follow_the_plug_and_replays_open_none(once: duckdb.DuckDBPyConnection) -> None:
    assert sessions(once, "evcc.lp0") == [
        (1, "connected", naive(60), naive(1900), E0, E0 + 3700, 3650.0, "completed"),
        # plugged in again as the gateway's replay said at 2100.1, but the session starts with
        # the first live reading that says so
        (2, "connected", naive(2200), None, E0 + 3800, None, None, "active"),
    ]


def test_a_device_without_connected_has_charging_sessions(once: duckdb.DuckDBPyConnection) -> None:
    assert sessions(once, "openevse.oe0") == [
        (1, "charging", naive(20), naive(930), E0, E0 + 760, None, "completed"),
        (2, "charging", naive(1000), None, E0 + 800, None, None, "active"),  # the first counter in it
    ]


def session_of(*messages: Message, batch_size: int = 1) -> list[tuple[Any, ...]]:
    return sessions(folded(list(messages), batch_size), "evcc.lp1")


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_gateway_restart_mid_session_does_not_duplicate_it(batch_size: int) -> None:
    live = {"online": True, "last_seen_at": at(0)}
    found = session_of(
        reading("evcc", "lp1", 0, connected=True, energy_wh=100, **live),
        reading("evcc", "lp1", 10, connected=True, charging=True, energy_wh=200, **live),
        # the gateway restarts: the broker replays what it retained, one topic at a time
        reading("evcc", "lp1", 20, retained=True, title="Garage"),
        reading("evcc", "lp1", 20.1, retained=True, title="Garage", connected=True),
        reading("evcc", "lp1", 20.2, retained=True, title="Garage", connected=True, charging=True, energy_wh=300),
        # and evcc goes on, live
        reading("evcc", "lp1", 30, connected=True, charging=True, energy_wh=400, **live),
        reading("evcc", "lp1", 40, connected=False, charging=False, energy_wh=500, session_energy_wh=390, **live),
        batch_size=batch_size,
    )
    assert found == [(1, "connected", naive(0), naive(40), 100.0, 500.0, 390.0, "completed")]


def test_a_replayed_unplug_ends_the_session() -> None:
    """The vehicle left while the gateway was away: the broker's retained value says so."""
    found = session_of(
        reading("evcc", "lp1", 0, connected=True, energy_wh=100),
        reading("evcc", "lp1", 50, retained=True, connected=False, energy_wh=900),
    )
    assert found == [(1, "connected", naive(0), naive(50), 100.0, 900.0, None, "completed")]


def test_replayed_values_of_a_device_never_seen_live_open_nothing() -> None:
    replay = [reading("evcc", "lp1", t, retained=True, connected=True, charging=True) for t in (0, 1, 2)]
    assert session_of(*replay) == []
    assert session_of(*replay, reading("evcc", "lp1", 3, connected=True))[0][2] == naive(3)


def test_a_reading_the_gateway_writes_itself_opens_nothing() -> None:
    """After a restart the broker replays "plugged in" (nothing opens); the device then only
    repeats unchanged values (no reading) and, silent for EVBUS_MQTT_SILENCE, gets the gateway's
    own ``online: false`` reading, which repeats the stored ``connected: true``: still nothing."""
    replay = reading("evcc", "lp1", 0, retained=True, connected=True)
    silence = reading("evcc", "lp1", 600, raw_topic=None, online=False, connected=True)
    assert session_of(replay, silence) == []
    assert session_of(replay, silence, reading("evcc", "lp1", 700, connected=True))[0][2] == naive(700)


def test_unknown_plug_state_changes_nothing() -> None:
    found = session_of(
        reading("evcc", "lp1", 0, connected=True, energy_wh=1),
        reading("evcc", "lp1", 1),  # evcc's restart burst: connected erased
        reading("evcc", "lp1", 2, connected=True, energy_wh=5),
        reading("evcc", "lp1", 3, connected=False),  # no counter in the last reading
    )
    assert found == [(1, "connected", naive(0), naive(3), 1.0, 5.0, None, "completed")]


def test_several_sessions_in_one_batch_are_numbered_in_order() -> None:
    plug = [reading("evcc", "lp1", t, connected=t % 20 < 10, energy_wh=t) for t in range(0, 60, 5)]
    found = session_of(*plug, batch_size=len(plug))
    assert [(n, start, stop, status) for n, _, start, stop, *_, status in found] == [
        (1, naive(0), naive(10), "completed"),
        (2, naive(20), naive(30), "completed"),
        (3, naive(40), naive(50), "completed"),
    ]
    assert session_of(*plug, batch_size=1) == found


# --- transactions: OCPP and MQTT sessions alike -------------------------------------------------


def test_device_sessions_are_transactions_with_source_mqtt(once: duckdb.DuckDBPyConnection) -> None:
    found, total = queries.transactions(once, queries.TransactionFilter(identity="evcc.lp0"))
    assert total == 2
    assert as_json(found[1]) == {
        "transactionId": "mqtt:evcc.lp0:1",
        "identity": "evcc.lp0",
        "protocol": None,
        "evseId": None,
        "connectorId": None,
        "idTag": None,
        "startedAt": at(60),
        "stoppedAt": at(1900),
        "meterStart": E0,
        "meterStop": E0 + 3700,
        "energyWh": 3650.0,  # the device's own session energy at the end
        "stopReason": None,
        "status": "completed",
        "source": "mqtt",
    }
    assert (found[0].status, found[0].energy_wh) == ("active", 100.0)  # live: the device's session energy now
    charging_only, _ = queries.transactions(once, queries.TransactionFilter(identity="openevse.oe0"))
    assert [t.energy_wh for t in charging_only] == [0.0, 760.0]  # counter differences
    _, total = queries.transactions(once, queries.TransactionFilter(active=True, source="mqtt"))
    assert total == 2 * DEVICES
    assert queries.transactions(once, queries.TransactionFilter(id_tag="TAG0")) == ([], 0)
    (detail,) = queries.transaction(once, "mqtt:evcc.lp0:1")
    energy = [v.value for v in detail.meter_values if v.measurand == "Energy.Active.Import.Register"]
    assert energy == [E0, E0 + 100, E0 + 3600, E0 + 3700]
    assert queries.transaction(once, "mqtt:evcc.lp0:9") == []


# --- time series ------------------------------------------------------------------------------


def test_raw_readings_in_a_span(once: duckdb.DuckDBPyConnection) -> None:
    span = devices.Span("evcc.lp0", T0 + timedelta(seconds=60), T0 + timedelta(seconds=1900))
    found, total = devices.readings(once, span, queries.Page(limit=2))
    assert total == 3
    assert [(r.ts, r.power_w, r.vehicle_connected) for r in found] == [(at(60), None, True), (at(61), 7200.5, True)]
    assert found[1].currents_a == [10.5, 10.5, 10.5]
    assert found[1].voltages_v == [230.1, 229.9, None]


def steady() -> duckdb.DuckDBPyConnection:
    """One device: 1 kW until 08:05, 7 kW until 08:20, 0 until 08:35, then offline."""
    day = datetime(2026, 11, 21, 7, 50, tzinfo=UTC)

    def r(minutes: int, **fields: Any) -> Message:
        return reading("evcc", "lp9", (day - T0).total_seconds() + minutes * 60, **fields)

    return folded(
        [
            r(0, power_w=1000, energy_wh=0, online=True, currents_a=[4.3, None, None]),
            r(15, power_w=7000, energy_wh=100, online=True, currents_a=[10, 10, 10]),
            r(30, power_w=0, energy_wh=1850, online=True, currents_a=[0, 0, 0]),
            r(45, power_w=5000, energy_wh=1850, online=False),
            raw("evcc/lp9/x"),
        ],
        2,
    )


def test_buckets_weigh_each_value_by_how_long_it_held() -> None:
    span = devices.Span("evcc.lp9", datetime(2026, 11, 21, 8, 0, tzinfo=UTC), datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    found = devices.buckets(steady(), span, timedelta(minutes=15))
    assert [(b.ts[11:16], b.readings, b.power_w, b.power_min_w, b.power_max_w, b.energy_wh) for b in found] == [
        ("08:00", 1, 5000.0, 1000.0, 7000.0, 100.0),  # 1 kW for 5 min (from before the span), 7 kW for 10
        ("08:15", 1, 2333.333333, 0.0, 7000.0, 1850.0),  # 7 kW for 5 min, 0 for 10
        ("08:30", 1, 0.0, 0.0, 0.0, 1850.0),  # 0 for 5 min, then offline: unknown, not held
        ("08:45", 0, None, None, None, 1850.0),  # the counter is still what it was
    ]
    assert found[0].currents_a == [pytest.approx((4.3 * 5 + 10 * 10) / 15), 10.0, 10.0]
    hourly = devices.buckets(steady(), span, timedelta(hours=1))
    assert [(b.ts, b.readings, b.power_w) for b in hourly] == [
        ("2026-11-21T08:00:00.000000Z", 3, pytest.approx((1000 * 5 + 7000 * 15) / 35)),
    ]


def test_buckets_start_on_multiples_of_their_width() -> None:
    span = devices.Span("evcc.lp9", datetime(2026, 11, 21, 8, 7, tzinfo=UTC), datetime(2026, 11, 21, 8, 30, tzinfo=UTC))
    found = devices.buckets(steady(), span, timedelta(minutes=10))
    assert [(b.ts[11:16], b.power_w) for b in found] == [
        ("08:00", 7000.0),  # only 08:07-08:10 is in the span
        ("08:10", 7000.0),
        ("08:20", 0.0),
    ]
    assert devices.bucket_count(span.since, span.until, timedelta(minutes=10)) >= len(found)


def test_no_readings_no_buckets() -> None:
    con = fresh()
    span = devices.Span("evcc.none", datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
    assert devices.buckets(con, span, timedelta(hours=1)) == []
    assert devices.readings(con, span, queries.Page()) == ([], 0)


def test_the_batch_takes_the_source_and_device_from_the_subject() -> None:
    batch = Batch()
    batch.add_reading(7, 0, "telemetry.shelly.plug%2F1", None, b"{}")
    batch.add_reading(8, 0, "telemetry.raw.mqtt.a.b", None, b"1")
    table = batch.readings_table().to_pylist()
    assert table == [
        {"seq": 7, "stream_us": 0, "device_id": "shelly.plug%2F1", "source": "shelly", "device": "plug/1", "body": "{}"}
    ]
    assert (batch.last_telemetry, batch.size) == (8, 2)
