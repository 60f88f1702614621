"""The MQTT control plane end to end: the API and the MQTT gateways talk over NATS only (each gateway
here has a NATS connection of its own, as in another process), devices are real MQTT clients of the
test session's nats-server MQTT listener (docs/adr/0010-mqtt-gateway.md, "Control plane")."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import msgspec
import pytest

from api.mqtt import WRITABLE, _answered, shown_by
from evbus import bootstrap
from evbus.settings import Settings
from gateways.mqtt.gateway import MqttGateway
from gateways.mqtt.ignore import OWN_SUBJECTS
from gateways.mqtt.writes import Setting, Writable, choice, json_value
from schemas import subjects
from schemas.telemetry import MqttPresence, SettingReply, SettingRequest, encode
from tests.conftest import Stack, running, stack_settings
from tests.gateways.mqtt.support import device, fresh, latest, mqtt_gateway, raw, true
from tests.projections.synthetic import publish, reading
from tests.support import eventually, stored

pytestmark = pytest.mark.nats


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The API alone: no OCPP gateway, no processors, no MQTT gateway (each test starts its own)."""
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("mqtt-api"))
    async with running(settings, gateway=False, processor=False, api=True) as stack:
        yield stack


@pytest.fixture
def mqtt_settings(settings: Settings, mqtt_port: int) -> Settings:
    return settings.with_(mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}", gateway_id=f"gw-{fresh()}")


@contextlib.asynccontextmanager
async def gateway(settings: Settings, topics: str, **changes: Any) -> AsyncIterator[MqttGateway]:
    async with mqtt_gateway(settings, topics, gateway_id=settings.gateway_id, **changes) as (gw, _):
        yield gw


async def events(site: Stack, kind: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(m.data) for m in await stored(site.js, subjects.mqtt_event(kind), "EVENTS")]


async def our(api: httpx.AsyncClient, gateway_id: str) -> dict[str, Any] | None:
    answer = (await api.get("/api/mqtt/status")).json()
    return next((g for g in answer["gateways"] if g["gateway"] == gateway_id), None)


# --- status -----------------------------------------------------------------------------------


async def test_without_a_gateway_the_status_is_an_empty_list_at_once(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/mqtt/status")
    assert answer.status_code == 200
    assert answer.json() == {"gateways": [], "unreachable": []}


async def test_status_shows_the_connection_the_recent_rate_and_unmatched_topics(
    api: httpx.AsyncClient, mqtt_settings: Settings, mqtt_port: int
) -> None:
    serial, odd = fresh(), f"odd-{fresh()}"
    # the listener's device user (nats.conf), whose credentials the status must not show
    with_password = mqtt_settings.with_(mqtt_url=f"mqtt://mqtt-device:mqtt-device@127.0.0.1:{mqtt_port}")
    topics = f"go-eCharger/{serial}/#,{odd}/#"
    async with gateway(with_password, topics) as gw, device(mqtt_port) as dev:
        await dev.send([(f"go-eCharger/{serial}/car", b"2"), (f"go-eCharger/{serial}/amp", b"16")], retain=False)
        await dev.send([(f"{odd}/a", b"1"), (f"{odd}/b", b"2"), (f"{odd}/a", b"3")], retain=False)
        await eventually(lambda: true(gw.counters.stored >= 5))
        found = await our(api, gw.id)
        assert found is not None
        assert found["broker"] == f"mqtt://127.0.0.1:{mqtt_port}"
        assert "mqtt-device" not in str(found)
        assert (found["connected"], found["connects"], found["subscriptions"]) == (True, 1, topics.split(","))
        assert found["since"] >= found["startedAt"]
        assert found["messagesPerSecond"] > 0
        assert found["outcomes"]["reading"] == 2
        assert found["outcomes"]["unmatched"] == 3
        assert (found["devices"], found["topicsSeen"]) == (1, 4)
        assert found["unmatchedTopics"] == [f"{odd}/b", f"{odd}/a"]  # distinct, newest first
        assert found["unmatchedTopicCount"] == 2
        assert found["ignored"]["builtIn"] == list(OWN_SUBJECTS)
    assert await our(api, gw.id) is None  # a stopped gateway is gone from the status at once


async def test_a_gateway_that_died_is_listed_unreachable(site: Stack, api: httpx.AsyncClient) -> None:
    ghost = f"gw-{fresh()}"
    kv = await site.js.key_value(subjects.BUCKET_MQTT_GATEWAYS)
    presence = MqttPresence(gateway=ghost, broker="mqtt://10.0.0.9:1883", started_at="2026-11-21T08:00:00Z")
    await kv.put(subjects.kv_key(ghost), encode(presence))
    try:
        answer = (await api.get("/api/mqtt/status")).json()
        assert [g["gateway"] for g in answer["unreachable"]] == [ghost]
        refused = await api.post("/api/devices/evcc.lp1/settings/mode", json={"value": "now"})
        assert refused.status_code == 503
        assert refused.json()["error"] == "1 of 1 MQTT gateway(s) did not answer"
    finally:
        await kv.delete(subjects.kv_key(ghost))


# --- ignored topics ---------------------------------------------------------------------------


@pytest.fixture
async def serial(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A go-e serial of this test; the ignore filter the test adds for it is removed afterwards
    (one left behind would drop messages of later tests: the bucket is the session's)."""
    serial = fresh()
    yield serial
    await api.delete("/api/mqtt/ignored-topics", params={"filter": f"+/{serial}/nrg"})


async def stored_after(js: Any, port: int, topic: str, payload: bytes) -> int:
    """Send ``payload`` on ``topic``, then a marker of the same device; how many messages of
    ``topic`` are stored once the marker is (a gateway handles messages in broker order)."""
    marker = topic.rsplit("/", 1)[0] + "/err"
    markers = len(await raw(js, marker))
    async with device(port) as dev:
        await dev.send([(topic, payload), (marker, b"0")], retain=False)
    await eventually(lambda: _grew(raw(js, marker), markers))
    return len(await raw(js, topic))


async def _grew(found: Any, before: int) -> bool:
    return len(await found) > before


async def test_ignored_topics_round_trip_and_survive_a_gateway_restart(
    site: Stack, api: httpx.AsyncClient, mqtt_settings: Settings, mqtt_port: int, serial: str
) -> None:
    noisy, topics = f"go-eCharger/{serial}/nrg", f"go-eCharger/{serial}/#"
    topic_filter = f"+/{serial}/nrg"  # a wildcard, yet nothing of any other test
    nrg = b"[231,230,232,0,16,16,16,0,0,0,0,11130]"
    async with gateway(mqtt_settings, topics, mqtt_ignore=f"go-eCharger/{serial}/eto") as gw:
        assert await stored_after(site.js, mqtt_port, noisy, nrg) == 1
        added = await api.post("/api/mqtt/ignored-topics", json={"filter": topic_filter, "note": "chatty"})
        assert added.status_code == 201, added.text
        assert added.json() == {
            "filter": topic_filter,
            "origin": "operator",
            "removable": True,
            "addedBy": "admin",
            "addedAt": added.json()["addedAt"],
            "note": "chatty",
        }
        await eventually(lambda: true(topic_filter in gw.filters.operator))  # no restart
        dropped = gw.counters.outcomes.get("dropped", 0)
        assert await stored_after(site.js, mqtt_port, noisy, nrg) == 1  # not stored
        assert gw.counters.outcomes["dropped"] == dropped + 1
        again = await api.post("/api/mqtt/ignored-topics", json={"filter": topic_filter})
        assert (again.status_code, again.json()["note"]) == (200, "chatty")

        listed = await api.get("/api/mqtt/ignored-topics")
        rows = {(r["filter"], r["origin"], r["removable"]) for r in listed.json()}
        assert {(f, "builtIn", False) for f in OWN_SUBJECTS} <= rows
        assert (f"go-eCharger/{serial}/eto", "setting", False) in rows
        assert (topic_filter, "operator", True) in rows
        assert int(listed.headers["X-Total-Count"]) == len(listed.json())
        assert (await our(api, gw.id) or {})["ignored"]["operator"] == [topic_filter]
        refused = await api.delete("/api/mqtt/ignored-topics", params={"filter": f"go-eCharger/{serial}/eto"})
        assert (refused.status_code, "EVBUS_MQTT_IGNORE of gateway" in refused.json()["error"]) == (409, True)

    async with gateway(mqtt_settings, topics) as gw:  # restarted: the filter comes from the bucket
        assert topic_filter in gw.filters.operator
        assert await stored_after(site.js, mqtt_port, noisy, nrg) == 1
        removed = await api.delete("/api/mqtt/ignored-topics", params={"filter": topic_filter})
        assert (removed.status_code, removed.json()) == (200, {"deleted": topic_filter})
        await eventually(lambda: true(topic_filter not in gw.filters.operator))
        assert await stored_after(site.js, mqtt_port, noisy, nrg) == 2  # stored again

    changes = [e for e in await events(site, "ignore_changed") if e["filter"] == topic_filter]
    assert [(e["action"], e["requestedBy"]) for e in changes] == [("added", "admin"), ("removed", "admin")]


@pytest.mark.parametrize(
    ("method", "body_or_params", "status", "error"),
    [
        ("post", {"filter": "#"}, 422, "invalid topic filter: the filter would drop every topic"),
        ("post", {"filter": "a/#/b"}, 422, "invalid topic filter: '#' is only allowed as the whole last level"),
        ("post", {"filter": "a+/b"}, 422, "invalid topic filter: '+' is only allowed as a whole level"),
        ("post", {"filter": "ocpp/#"}, 409, "'ocpp/#' is built in"),
        ("post", {"topic": "a/b"}, 400, "invalid body"),
        ("delete", {"filter": "evbus/#"}, 409, "'evbus/#' is built in"),
        ("delete", {"filter": "never/added"}, 404, "is not an ignore filter an operator added"),
        ("delete", {"filter": "#"}, 404, "is not an ignore filter an operator added"),
    ],
)
async def test_invalid_and_read_only_filters_are_refused_with_json(
    api: httpx.AsyncClient, method: str, body_or_params: dict[str, str], status: int, error: str
) -> None:
    if method == "post":
        answer = await api.post("/api/mqtt/ignored-topics", json=body_or_params)
    else:
        answer = await api.delete("/api/mqtt/ignored-topics", params=body_or_params)
    assert answer.status_code == status, answer.text
    assert error in answer.json()["error"]


# --- device settings --------------------------------------------------------------------------


class Charger:
    """A device under test: a real MQTT client that publishes its state and answers the writes on
    its ``/set`` topics as the family does (or stays silent)."""

    def __init__(self, client: aiomqtt.Client, echo: dict[str, str] | None) -> None:
        self.client = client
        self.echo = echo or {}  # command topic → the topic it publishes the new value on
        self.commands: list[tuple[str, bytes, bool, int]] = []

    async def serve(self) -> None:
        async for message in self.client.messages:
            topic, payload = str(message.topic), bytes(message.payload)  # type: ignore[arg-type]
            self.commands.append((topic, payload, message.retain, message.qos))
            if topic in self.echo:
                await self.client.publish(self.echo[topic], payload, qos=1)


@contextlib.asynccontextmanager
async def charger(port: int, state: list[tuple[str, bytes]], echo: dict[str, str] | None) -> AsyncIterator[Charger]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"charger-{fresh()}") as client:
        dev = Charger(client, echo)
        for topic in echo or {}:
            await client.subscribe(topic, qos=1)
        serving = asyncio.create_task(dev.serve())
        try:
            for topic, payload in state:
                await client.publish(topic, payload, qos=1)
            yield dev
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


def _families(lp: str, serial: str, base: str, evse: str) -> list[dict[str, Any]]:
    """Per family: the device's state, a write, the command the device must get, its echo."""
    return [
        {
            "id": f"evcc.lp{lp}",
            "topics": f"evcc/loadpoints/{lp}/#",
            "state": [(f"evcc/loadpoints/{lp}/mode", b"pv"), (f"evcc/loadpoints/{lp}/charging", b"true")],
            "key": "mode",
            "value": "now",
            "command": (f"evcc/loadpoints/{lp}/mode/set", b"now"),
            "echo": f"evcc/loadpoints/{lp}/mode",
            "reading": ("evcc", f"lp{lp}", {"mode": "now"}),
        },
        {
            "id": f"goe.{serial}",
            "topics": f"go-eCharger/{serial}/#",
            "state": [(f"go-eCharger/{serial}/car", b"2"), (f"go-eCharger/{serial}/amp", b"10")],
            "key": "amp",
            "value": 16,
            "command": (f"go-eCharger/{serial}/amp/set", b"16"),
            "echo": f"go-eCharger/{serial}/amp",
            "reading": ("goe", serial, {"extra": {"requestedCurrentA": 16}}),
        },
        {
            "id": f"openevse.{base}",
            "topics": f"{base}/#",
            "state": [(f"{base}/state", b"3"), (f"{base}/override", b'{"state":"null"}')],
            "key": "override",
            "value": {"state": "disabled", "charge_current": 10},
            "command": (f"{base}/override/set", b'{"state":"disabled","charge_current":10}'),
            "echo": f"{base}/override",
            "reading": ("openevse", base, {"extra": {"override": {"state": "disabled", "charge_current": 10}}}),
        },
        {
            "id": f"esp32evse.{evse}",
            "topics": f"{evse}/#",
            "state": [(f"{evse}/state", b'{"state":"C2","enabled":true,"current":16}')],
            "key": "enabled",
            "value": False,
            "command": (f"{evse}/enabled/set", b"OFF"),
            "echo": None,  # the Lua bridge publishes its whole state instead (below)
            "reading": ("esp32evse", evse, {"enabled": False}),
        },
    ]


CASES = ["evcc", "goe", "openevse", "esp32evse"]


@pytest.mark.parametrize("family", CASES)
async def test_a_written_setting_reaches_the_device_and_its_echo_answers_200(
    site: Stack, api: httpx.AsyncClient, mqtt_settings: Settings, mqtt_port: int, family: str
) -> None:
    lp = str(int(uuid.uuid4().int % 10**6) + 100)
    case = _families(lp, fresh(), f"openevse-{fresh()}", f"evse{fresh()}")[CASES.index(family)]
    command_topic, payload = case["command"]
    echo = {command_topic: case["echo"]} if case["echo"] else {command_topic: ""}
    async with gateway(mqtt_settings, case["topics"]) as gw, charger(mqtt_port, case["state"], echo) as dev:
        source, name, _ = case["reading"]
        await eventually(lambda: true(gw.devices.get(source, name) is not None))
        if family == "esp32evse":  # its bridge answers with its next state message

            async def bridge() -> None:
                await eventually(lambda: true(bool(dev.commands)))
                await dev.client.publish(f"{name}/state", b'{"state":"B1","enabled":false,"current":16}', qos=1)

            answering = asyncio.create_task(bridge())
            dev.echo.clear()
        answer = await api.post(f"/api/devices/{case['id']}/settings/{case['key']}", json={"value": case["value"]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["echoed"], body["id"], body["key"]) == ("applied", True, case["id"], case["key"])
        assert body["value"] == case["value"]
        assert (body["topic"], body["payload"], body["gateway"]) == (command_topic, payload.decode(), gw.id)
        assert body["durationMs"] > 0
        assert dev.commands[0] == (command_topic, payload, False, 1)  # QoS 1, not retained
        if family == "esp32evse":
            await answering
        wire = msgspec.json.decode(encode(await latest(site.js, source, name)))  # stored before the answer
        for field, value in case["reading"][2].items():
            assert wire[field] == value if field != "extra" else value.items() <= wire["extra"].items()
        written = [e for e in await events(site, "setting") if e["settingId"] == body["settingId"]]
        assert len(written) == 1
        assert (written[0]["outcome"], written[0]["requestedBy"], written[0]["echoed"]) == ("applied", "admin", True)
        assert (written[0]["topic"], written[0]["value"]) == (command_topic, case["value"])
        stored_command = await eventually(lambda: raw(site.js, command_topic))  # the command is in the stream too
        assert (stored_command[-1].headers or {})[subjects.H_MQTT_OUTCOME] in ("ignored", "unmatched")


async def test_a_value_the_device_shows_already_is_unchanged_and_no_echo_is_a_504(
    site: Stack, api: httpx.AsyncClient, mqtt_settings: Settings, mqtt_port: int
) -> None:
    serial = fresh()
    state = [(f"go-eCharger/{serial}/car", b"1"), (f"go-eCharger/{serial}/amp", b"16")]
    silent = {f"go-eCharger/{serial}/amp/set": ""}  # go-e with mcr (MQTT readonly) on: never answers
    async with gateway(mqtt_settings, f"go-eCharger/{serial}/#") as gw, charger(mqtt_port, state, silent) as dev:
        dev.echo.clear()
        await latest(site.js, "goe", serial, extra={"requestedCurrentA": 16})
        same = await api.post(f"/api/devices/goe.{serial}/settings/amp", json={"value": 16})
        assert same.status_code == 200, same.text
        assert (same.json()["status"], same.json()["echoed"]) == ("unchanged", False)
        late = await api.post(f"/api/devices/goe.{serial}/settings/amp?timeout=0.3", json={"value": 10})
        assert late.status_code == 504, late.text
        error = late.json()
        assert error["error"] == "the device did not show the new value in time (it was sent)"
        assert (error["detail"]["outcome"], error["detail"]["echoed"], error["detail"]["payload"]) == (
            "no_echo",
            False,
            "10",
        )
        assert "mcr" in error["detail"]["hint"]
        assert [c[1] for c in dev.commands] == [b"16", b"10"]
        assert gw.devices.get("goe", serial) is not None
    outcomes = {e["settingId"]: e["outcome"] for e in await events(site, "setting")}
    assert outcomes[late.json()["detail"]["settingId"]] == "no_echo"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/devices/shelly.plug/settings/output", {"value": True}, 404, "no device of source 'shelly'"),
        ("/api/devices/nodot/settings/mode", {"value": "now"}, 404, "unknown device 'nodot'"),
        ("/api/devices/evcc.lp1/settings/colour", {"value": "red"}, 404, "unknown setting 'colour'"),
        ("/api/devices/evcc.lp1/settings/mode", {"value": "fast"}, 422, "invalid value: mode: expected one of"),
        ("/api/devices/goe.1/settings/amp", {"value": 40}, 422, "invalid value: amp: expected 6 to 32, got 40"),
        ("/api/devices/goe.1/settings/amp", {"amps": 16}, 400, "body must be {value}"),
        ("/api/devices/evcc.lp1/settings/mode", {"value": "now"}, 503, "no MQTT gateway is running"),
    ],
)
async def test_settings_are_checked_before_any_gateway_is_asked(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    answer = await api.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert error in answer.json()["error"]
    if "colour" in path:
        assert answer.json()["detail"]["validKeys"] == sorted(WRITABLE["evcc"][0].settings)


async def test_a_device_no_gateway_knows_is_404_and_a_key_of_another_device_kind_too(
    api: httpx.AsyncClient, mqtt_settings: Settings, mqtt_port: int
) -> None:
    root = fresh()
    async with gateway(mqtt_settings, "evcc/site/" + root) as gw, device(mqtt_port) as dev:
        unknown = await api.post(f"/api/devices/evcc.lp{root}/settings/mode", json={"value": "now"})
        assert unknown.status_code == 404
        assert unknown.json()["error"] == f"unknown device 'evcc.lp{root}': no MQTT gateway knows it"
        await dev.send([("evcc/site/" + root, b"1")], retain=False)  # unnormalised, but still no device
        assert gw.connected


async def test_a_family_without_echo_is_sent(site: Stack, mqtt_settings: Settings, mqtt_port: int) -> None:
    """The gateway answers ``sent`` for a setting its family does not show back; the API says 202."""
    serial = fresh()
    table = {
        "goe": (Writable("goe", None, {"psm": Setting("go-eCharger/{device}/psm/set", choice(1, 2), json_value)}),)
    }
    settings = mqtt_settings.with_(mqtt_topics=f"go-eCharger/{serial}/#")
    async with bootstrap.bus(settings, embedded=False) as b, device(mqtt_port) as dev:
        gw = MqttGateway(b.nc, settings, url=settings.mqtt_url or "", writable=table)
        await gw.start()
        try:
            await eventually(lambda: true(gw.connected))
            await dev.send([(f"go-eCharger/{serial}/car", b"1")], retain=False)
            await eventually(lambda: true(gw.devices.get("goe", serial) is not None))
            request = SettingRequest(
                setting_id=fresh(), source="goe", device=serial, key="psm", value=msgspec.Raw(b"2"), requested_by="t"
            )
            msg = await site.nc.request(subjects.mqtt_control(gw.id, "setting"), encode(request), timeout=10)
            reply = msgspec.json.decode(msg.data, type=SettingReply)
            assert (reply.outcome, reply.echoed, reply.topic, reply.payload) == (
                "sent",
                False,
                f"go-eCharger/{serial}/psm/set",
                "2",
            )
            answered = _answered(f"goe.{serial}", reply)
            assert answered.status_code == 202
            assert msgspec.json.decode(answered.content)["status"] == "sent"
        finally:
            await gw.stop()


# --- listing a device's settings ----------------------------------------------------------------


async def test_a_loadpoint_lists_its_settings_with_what_it_shows(site: Stack, api: httpx.AsyncClient) -> None:
    lp, root = f"lp{fresh()}", f"home{fresh()}"
    extra = {"minCurrentA": 6.0, "phasesConfigured": 0, "limitEnergyWh": 12500.0}
    await publish(
        site.js,
        [
            reading("evcc", lp, 0, mode="pv", extra=extra, online=True),
            reading("evcc", f"{root}/lp1", 0, mode="now", online=True),  # evcc under another root: evcc.{root}%2Flp1
            reading("evcc", f"{root}/site", 0, kind="site", power_w=-1200, online=True),
        ],
    )
    await site.projected()
    answer = await api.get(f"/api/devices/evcc.{lp}/settings")
    assert answer.status_code == 200, answer.text
    listed = {row["key"]: row for row in answer.json()}
    assert list(listed) == list(WRITABLE["evcc"][0].settings)  # every key POST takes, in the table's order
    assert listed["mode"] == {
        "key": "mode",
        "type": "choice",
        "options": ["off", "now", "minpv", "pv"],
        "unit": None,
        "shownBy": "mode",
        "value": "pv",
    }
    assert listed["minCurrent"] == {
        "key": "minCurrent",
        "type": "number",
        "min": 0,
        "max": 125,
        "integer": False,
        "unit": "A",
        "shownBy": "extra.minCurrentA",
        "value": 6.0,
    }
    assert (listed["maxCurrent"]["value"], listed["limitSoc"]["integer"], listed["limitSoc"]["unit"]) == (
        None,
        True,
        "%",
    )
    energy = listed["limitEnergy"]
    assert (energy["unit"], energy["shownBy"], energy["scale"], energy["value"]) == (
        "kWh",
        "extra.limitEnergyWh",
        1000,
        12.5,
    )
    assert (listed["phasesConfigured"]["options"], listed["phasesConfigured"]["value"]) == ([0, 1, 3], 0)
    assert listed["phases"]["aliasOf"] == "phasesConfigured"
    assert "aliasOf" not in listed["phasesConfigured"]

    escaped = await api.get(f"/api/devices/evcc.{root}%252Flp1/settings")  # its own % sent as %25
    assert escaped.status_code == 200, escaped.text
    assert [row["value"] for row in escaped.json() if row["key"] == "mode"] == ["now"]

    site_settings = await api.get(f"/api/devices/evcc.{root}%252Fsite/settings")
    assert (site_settings.status_code, site_settings.json()) == (200, [])  # a site takes no loadpoint settings

    unknown = await api.get(f"/api/devices/evcc.lp{fresh()}/settings")
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("unknown device 'evcc.lp")


def test_every_built_in_setting_is_shown_on_a_field_of_the_device_shape() -> None:
    """shown_by raises KeyError for an echo that is no field of views.Device."""
    shown = {(source, key): shown_by(s.echo) for source, ws in WRITABLE.items() for w in ws
             for key, s in w.settings.items() if s.echo is not None}  # fmt: skip
    assert shown[("evcc", "limitEnergy")] == "extra.limitEnergyWh"
    assert shown[("esp32evse", "current")] == "offeredCurrentA"
    assert shown[("esp32evse", "enabled")] == "enabled"
    assert shown_by("connected") == "vehicleConnected"  # a reading's, not the device's presence


async def test_without_nats_the_mqtt_routes_are_503_not_500(nats_url: str, tmp_path: Path) -> None:
    settings = stack_settings(nats_url, tmp_path)
    async with running(settings, gateway=False, processor=False, api=True) as stack, stack.http() as api:
        assert stack.api is not None
        await stack.api.services.nc.close()  # the API process lost its bus
        for method, path in (
            ("GET", "/api/mqtt/status"),
            ("GET", "/api/mqtt/ignored-topics"),
            ("POST", "/api/devices/evcc.lp1/settings/mode"),
        ):
            answer = await api.request(method, path, json={"value": "pv"} if method == "POST" else None)
            assert answer.status_code == 503, (path, answer.text)
            assert "NATS" in answer.json()["error"]
