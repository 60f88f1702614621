"""`/api/devices`, `/api/devices/{id}`, `/api/devices/{id}/readings` and MQTT sessions in
`/api/transactions`: readings stored on TELEMETRY, folded by the API's own projection, served as the
routes promise; and one reading from a real MQTT client through the MQTT gateway to `/api/devices`."""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from evbus.settings import Settings
from schemas import subjects
from tests.conftest import Stack, running, stack_settings
from tests.gateways.mqtt.support import device, mqtt_gateway
from tests.projections.synthetic import T0, Message, Script, at, device_traffic, publish, reading
from tests.support import eventually

E0 = 10_000.0  # device 0's energy counter at the start (synthetic.device_traffic)


@dataclasses.dataclass
class Site:
    stack: Stack
    evcc: str  # source of two evcc-like loadpoints (lp0, lp1): sessions, a restart, a replay
    charger: str  # source of two charging-only devices (oe0, oe1)
    station: str  # an OCPP 1.6 station with one completed transaction (id 1000)
    plug: str  # a device whose id needs escaping: {evcc}.plug%2F1


def steady(source: str) -> list[Message]:
    """``{source}.steady``: 1 kW until 08:05, 7 kW until 08:20, 0 until 08:35, then offline."""
    start = (datetime(2026, 11, 21, 7, 50, tzinfo=UTC) - T0).total_seconds()
    return [
        reading(source, "steady", start + minutes * 60, **fields)
        for minutes, fields in [
            (0, {"power_w": 1000, "energy_wh": 0, "online": True}),
            (15, {"power_w": 7000, "energy_wh": 100, "online": True}),
            (30, {"power_w": 0, "energy_wh": 1850, "online": True}),
            (45, {"power_w": 5000, "energy_wh": 1850, "online": False}),
        ]
    ]


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tag = uuid.uuid4().hex[:8]
    evcc, charger, station = f"evcc-{tag}", f"oevse-{tag}", f"CP-{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [
        reading(charger, "recent", (now - T0).total_seconds() - seconds, power_w=seconds, online=True)
        for seconds in (2 * 86_400, 60)
    ]
    messages = [
        *device_traffic(2, evcc=evcc, charger=charger),
        *steady(evcc),
        reading(evcc, "plug/1", 0, kind="meter", power_w=12.5, online=True),
        *recent,
        # frame ids (Nats-Msg-Id syn:{n}) of their own: the session's server holds other tests' Scripts
        *Script().session_16(station, 0, 0),
    ]
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("devices"))
    async with running(settings, gateway=False, processor=False, api=True) as stack:
        await publish(stack.js, messages)
        await stack.projected()
        yield Site(stack, evcc, charger, station, f"{evcc}.plug%2F1")


@pytest.fixture
async def api(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with site.stack.http() as client:
        yield client


async def get(api: httpx.AsyncClient, path: str, expect: int = 200, **params: Any) -> httpx.Response:
    response = await api.get(path, params=params)
    assert response.status_code == expect, response.text
    return response


# --- devices ----------------------------------------------------------------------------------


async def test_devices_of_a_source_with_their_latest_reading(site: Site, api: httpx.AsyncClient) -> None:
    response = await get(api, "/api/devices", source=site.evcc)
    assert response.headers["X-Total-Count"] == "4"
    found = response.json()
    assert [d["id"] for d in found] == [f"{site.evcc}.lp0", f"{site.evcc}.lp1", site.plug, f"{site.evcc}.steady"]
    lp0 = found[0]
    assert (lp0["source"], lp0["device"], lp0["kind"]) == (site.evcc, "lp0", "evse")
    assert (lp0["connected"], lp0["online"], lp0["vehicleConnected"], lp0["charging"]) == (True, True, True, True)
    assert (lp0["powerW"], lp0["energyWh"], lp0["sessionEnergyWh"], lp0["socPct"]) == (3600, E0 + 3800, 100, None)
    assert (lp0["lastSeenAt"], lp0["updatedAt"], lp0["firstSeenAt"]) == (at(2200), at(2200), at(0))
    assert {"currentsA", "voltagesV", "stateRaw", "offeredCurrentA", "temperatureC", "errors", "mode", "title",
            "extra", "flags", "phases", "enabled", "state", "retained"} <= set(lp0)  # fmt: skip
    page2 = (await get(api, "/api/devices", source=site.evcc, limit=2, offset=2)).json()
    assert [d["device"] for d in page2] == ["plug/1", "steady"]


async def test_status_is_the_devices_presence(site: Site, api: httpx.AsyncClient) -> None:
    connected = (await get(api, "/api/devices", source=site.evcc, status="connected")).json()
    assert {d["device"] for d in connected} == {"lp0", "lp1", "plug/1"}
    gone = await get(api, "/api/devices", source=site.evcc, status="disconnected")
    assert [(d["device"], d["connected"], d["online"]) for d in gone.json()] == [("steady", False, False)]
    assert gone.headers["X-Total-Count"] == "1"


async def test_one_device_with_its_readings_and_sessions(site: Site, api: httpx.AsyncClient) -> None:
    one = (await get(api, f"/api/devices/{site.evcc}.lp0")).json()
    assert one["id"] == f"{site.evcc}.lp0"
    assert one["reading"]["ts"] == at(2200)
    assert one["reading"]["rawTopic"] == f"{site.evcc}/lp0"
    assert [r["ts"] for r in one["recentReadings"]][:3] == [at(2200), at(2100.1), at(2100)]
    assert [r["retained"] for r in one["recentReadings"]][:3] == [False, True, True]
    assert [(s["transactionId"], s["status"], s["source"]) for s in one["sessions"]] == [
        (f"mqtt:{site.evcc}.lp0:2", "active", "mqtt"),
        (f"mqtt:{site.evcc}.lp0:1", "completed", "mqtt"),
    ]


async def test_an_escaped_id_is_percent_encoded_in_the_url(site: Site, api: httpx.AsyncClient) -> None:
    assert site.plug == subjects.device_id(site.evcc, "plug/1")
    encoded = site.plug.replace("%", "%25")
    one = (await get(api, f"/api/devices/{encoded}")).json()
    assert (one["device"], one["kind"], one["powerW"]) == ("plug/1", "meter", 12.5)
    (only,) = (await get(api, f"/api/devices/{encoded}/readings", since=at(0), until=at(1))).json()
    assert only["powerW"] == 12.5


async def test_unknown_devices_are_404_json(site: Site, api: httpx.AsyncClient) -> None:
    for path in (f"/api/devices/{site.evcc}.nope", f"/api/devices/{site.evcc}.nope/readings"):
        body = (await get(api, path, expect=404)).json()
        assert body["error"] == f"unknown device '{site.evcc}.nope'"


# --- readings ---------------------------------------------------------------------------------


async def test_readings_as_they_came(site: Site, api: httpx.AsyncClient) -> None:
    path = f"/api/devices/{site.evcc}.lp0/readings"
    response = await get(api, path, since=at(60), until=at(1900), limit=2)
    assert response.headers["X-Total-Count"] == "3"
    first, second = response.json()
    assert (first["ts"], first["vehicleConnected"], first["powerW"]) == (at(60), True, None)
    assert (second["powerW"], second["currentsA"], second["voltagesV"]) == (
        7200.5,
        [10.5, 10.5, 10.5],
        [230.1, 229.9, None],
    )
    rest = (await get(api, path, since=at(60), until=at(1900), limit=2, offset=2)).json()
    assert [r["ts"] for r in rest] == [at(1861)]


async def test_readings_default_to_the_last_24_hours(site: Site, api: httpx.AsyncClient) -> None:
    found = (await get(api, f"/api/devices/{site.charger}.recent/readings")).json()
    assert [r["powerW"] for r in found] == [60]  # not the one of two days ago


async def test_readings_downsampled_by_time_held(site: Site, api: httpx.AsyncClient) -> None:
    path = f"/api/devices/{site.evcc}.steady/readings"
    response = await get(api, path, since="2026-11-21T08:00:00Z", until="2026-11-21T09:00:00Z", bucket="15m")
    assert response.headers["X-Total-Count"] == "4"
    fields = ("ts", "readings", "powerW", "powerMinW", "powerMaxW", "energyWh")
    rows = [tuple(b[f] for f in fields) for b in response.json()]
    assert rows == [
        ("2026-11-21T08:00:00.000000Z", 1, 5000.0, 1000.0, 7000.0, 100.0),
        ("2026-11-21T08:15:00.000000Z", 1, 2333.333333, 0.0, 7000.0, 1850.0),
        ("2026-11-21T08:30:00.000000Z", 1, 0.0, 0.0, 0.0, 1850.0),
        ("2026-11-21T08:45:00.000000Z", 0, None, None, None, 1850.0),  # offline: power unknown
    ]
    hourly = (await get(api, path, since="2026-11-21T08:00:00", until="2026-11-21T09:00:00", bucket="1h")).json()
    assert [(b["readings"], round(b["powerW"], 3)) for b in hourly] == [(3, round(110_000 / 35, 3))]


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"bucket": "5x"}, "bucket"),
        ({"bucket": "0m"}, "bucket"),
        ({"bucket": "1.5h"}, "bucket"),
        ({"bucket": "m"}, "bucket"),
        ({"bucket": "1s", "since": "2026-10-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "bucket"),
        ({"since": "notadate"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"since": "2026-11-21T09:00:00Z", "until": "2026-11-21T08:00:00Z"}, "since"),
        ({"since": "2026-11-21T08:00:00Z", "until": "2026-11-21T08:00:00Z"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
    ],
)
async def test_bad_readings_requests_are_400_json(
    site: Site, api: httpx.AsyncClient, params: dict[str, str], why: str
) -> None:
    body = (await get(api, f"/api/devices/{site.evcc}.steady/readings", expect=400, **params)).json()
    assert why in body["error"]


async def test_bad_device_list_requests_are_400_json(site: Site, api: httpx.AsyncClient) -> None:
    for params in ({"status": "perhaps"}, {"limit": "0"}, {"offset": "-1"}):
        assert "error" in (await get(api, "/api/devices", expect=400, **params)).json()


# --- transactions: OCPP and MQTT --------------------------------------------------------------


async def test_transactions_merge_ocpp_and_mqtt_sessions(site: Site, api: httpx.AsyncClient) -> None:
    (ocpp,) = (await get(api, "/api/transactions", identity=site.station)).json()
    assert (ocpp["transactionId"], ocpp["source"], ocpp["energyWh"]) == ("1000", "ocpp", 900)
    mqtt = (await get(api, "/api/transactions", identity=f"{site.evcc}.lp0")).json()
    assert [(t["transactionId"], t["source"], t["status"], t["energyWh"]) for t in mqtt] == [
        (f"mqtt:{site.evcc}.lp0:2", "mqtt", "active", 100),
        (f"mqtt:{site.evcc}.lp0:1", "mqtt", "completed", 3650),
    ]
    assert (mqtt[1]["startedAt"], mqtt[1]["stoppedAt"]) == (at(60), at(1900))
    # both in one time window, newest first (others' transactions may share the window)
    window = {"since": at(0), "until": at(3600), "limit": 1000}
    rows = (await get(api, "/api/transactions", **window)).json()
    mine = [(t["transactionId"], t["source"]) for t in rows if t["identity"] in (site.station, f"{site.evcc}.lp0")]
    assert mine == [(f"mqtt:{site.evcc}.lp0:2", "mqtt"), (f"mqtt:{site.evcc}.lp0:1", "mqtt"), ("1000", "ocpp")]
    only_mqtt = (await get(api, "/api/transactions", source="mqtt", **window)).json()
    assert {t["source"] for t in only_mqtt} == {"mqtt"}
    active = await get(api, "/api/transactions", identity=f"{site.charger}.oe1", active="true")
    assert [t["transactionId"] for t in active.json()] == [f"mqtt:{site.charger}.oe1:2"]
    assert active.headers["X-Total-Count"] == "1"
    assert (await get(api, "/api/transactions", identity=f"{site.evcc}.lp0", idTag="TAG0")).json() == []
    await get(api, "/api/transactions", expect=400, source="modbus")


async def test_transactions_csv_has_both_sources(site: Site, api: httpx.AsyncClient) -> None:
    text = (await get(api, "/api/transactions", format="csv", since=at(0), until=at(3600))).text
    rows = list(csv.DictReader(io.StringIO(text)))
    mine = {r["transactionId"]: r for r in rows if r["identity"] in (site.station, f"{site.charger}.oe0")}
    assert {k: (v["source"], v["status"], v["energyWh"]) for k, v in mine.items()} == {
        "1000": ("ocpp", "completed", "900.0"),
        f"mqtt:{site.charger}.oe0:1": ("mqtt", "completed", "760.0"),
        f"mqtt:{site.charger}.oe0:2": ("mqtt", "active", "0.0"),
    }


async def test_one_mqtt_session_with_its_meter_values(site: Site, api: httpx.AsyncClient) -> None:
    one = (await get(api, f"/api/transactions/mqtt:{site.evcc}.lp0:1")).json()
    assert (one["identity"], one["source"], one["meterStart"], one["meterStop"]) == (
        f"{site.evcc}.lp0",
        "mqtt",
        E0,
        E0 + 3700,
    )
    energy = [v["value"] for v in one["meterValues"] if v["measurand"] == "Energy.Active.Import.Register"]
    power = [(v["timestamp"], v["value"], v["unit"]) for v in one["meterValues"] if v["unit"] == "W"]
    assert energy == [E0, E0 + 100, E0 + 3600, E0 + 3700]
    assert power[0] == (at(61), 7200.5, "W")
    assert (await get(api, f"/api/transactions/mqtt:{site.evcc}.lp0:7", expect=404)).json()["error"]
    ocpp = (await get(api, "/api/transactions/1000", identity=site.station)).json()
    assert ocpp["source"] == "ocpp"


# --- end to end: a real MQTT client, the MQTT gateway, the projection, the API -----------------


async def test_an_mqtt_message_reaches_api_devices(
    site: Site, api: httpx.AsyncClient, settings: Settings, mqtt_port: int
) -> None:
    lp = str(int(uuid.uuid4().int % 10**6) + 100)
    base = f"evcc/loadpoints/{lp}"
    gateway_settings = settings.with_(mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}")
    async with mqtt_gateway(gateway_settings, f"{base}/#"), device(mqtt_port) as dev:
        await dev.send([(f"{base}/connected", b"true"), (f"{base}/chargePower", b"3680.5")], retain=False)

        async def shown() -> dict[str, Any] | None:
            response = await api.get(f"/api/devices/evcc.lp{lp}")
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["powerW"] == 3680.5 else None

        found = await eventually(shown, timeout=15)
    assert (found["source"], found["device"], found["vehicleConnected"], found["connected"]) == (
        "evcc",
        f"lp{lp}",
        True,
        True,
    )
    assert found["reading"]["rawTopic"] == f"{base}/chargePower"
    sessions = (await get(api, "/api/transactions", identity=f"evcc.lp{lp}")).json()
    assert [(s["transactionId"], s["status"]) for s in sessions] == [(f"mqtt:evcc.lp{lp}:1", "active")]
