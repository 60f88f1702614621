"""The MQTT gateway against real parts: fixtures published by a real MQTT client (aiomqtt) into the
test session's nats-server MQTT listener, readings and raw messages read back from TELEMETRY."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import aiomqtt
import msgspec
import pytest
from nats.aio.msg import Msg

from evbus.settings import Settings
from gateways.mqtt.gateway import topic_of_header
from schemas import subjects
from tests.gateways.mqtt import fixtures
from tests.gateways.mqtt.fixtures import lines
from tests.gateways.mqtt.support import device, fresh, latest, mqtt_gateway, raw, true
from tests.support import eventually, stored


@pytest.fixture
def mqtt_settings(settings: Settings, mqtt_port: int) -> Settings:
    return settings.with_(mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}")


async def test_evcc_fixture_becomes_one_loadpoint_snapshot_and_every_message_is_stored_raw(
    mqtt_settings: Settings, mqtt_port: int
) -> None:
    lp = str(int(uuid.uuid4().int % 10**6) + 100)
    messages = [(t, p) for t, p in lines(fixtures.EVCC_STARTUP) if "/loadpoints/1/" in t]
    messages = [(t.replace("/loadpoints/1/", f"/loadpoints/{lp}/"), p) for t, p in messages]
    async with mqtt_gateway(mqtt_settings, f"evcc/loadpoints/{lp}/#") as (_gw, js), device(mqtt_port) as dev:
        await dev.send(messages)
        reading = await latest(js, "evcc", f"lp{lp}", soc_pct=55)
        assert (reading.connected, reading.charging, reading.enabled, reading.mode) == (True, True, True, "pv")
        assert (reading.power_w, reading.currents_a, reading.voltages_v) == (
            3680.5,
            [16.01, 0, 0],
            [231.2, 230.8, 231.1],
        )
        assert (reading.session_energy_wh, reading.energy_wh, reading.soc_pct) == (2345.678, 1234567, 55)
        assert reading.online is True
        assert reading.raw_seq is not None
        wire = msgspec.json.decode((await stored(js, subjects.telemetry("evcc", f"lp{lp}"), "TELEMETRY"))[-1].data)
        assert {"powerW", "energyWh", "sessionEnergyWh", "currentsA", "voltagesV", "socPct"} <= set(wire)
        for topic, payload in messages:
            stored_raw = await eventually(lambda topic=topic: raw(js, topic))
            assert stored_raw[-1].data == payload
            headers = stored_raw[-1].headers or {}
            assert topic_of_header(headers[subjects.H_MQTT_TOPIC]) == topic
            assert headers[subjects.H_MQTT_RETAIN] == "false"
            assert headers[subjects.H_MSG_ID]
        summed = (await raw(js, f"evcc/loadpoints/{lp}/chargeVoltages"))[-1].headers or {}
        assert summed[subjects.H_MQTT_OUTCOME] == "ignored"


async def test_evcc_restart_burst_of_empty_retained_payloads_leaves_values_unset(
    mqtt_settings: Settings, mqtt_port: int
) -> None:
    lp = str(int(uuid.uuid4().int % 10**6) + 100)
    base = f"evcc/loadpoints/{lp}"
    values = [(f"{base}/chargePower", b"3680.5"), (f"{base}/vehicleSoc", b"55"), (f"{base}/connected", b"true")]
    async with mqtt_gateway(mqtt_settings, f"{base}/#") as (gw, js), device(mqtt_port) as dev:
        await dev.send(values)
        await latest(js, "evcc", f"lp{lp}", power_w=3680.5, soc_pct=55)
        await dev.send([(topic, b"") for topic, _ in values])  # evcc's Cleanup at restart
        reading = await latest(js, "evcc", f"lp{lp}", power_w=None, soc_pct=None, connected=None)
        wire = msgspec.json.decode((await stored(js, subjects.telemetry("evcc", f"lp{lp}"), "TELEMETRY"))[-1].data)
        assert "powerW" not in wire
        assert "socPct" not in wire
        assert reading.changed == ["connected"]
        assert gw.counters.outcomes.get("invalid", 0) == 0


async def test_retained_values_are_marked_and_a_reconnect_does_not_store_them_again(
    mqtt_settings: Settings, mqtt_port: int
) -> None:
    serial = fresh()
    async with device(mqtt_port) as dev:
        await dev.send(lines(fixtures.GOE, **{"012345": serial}))
        async with mqtt_gateway(mqtt_settings, f"go-eCharger/{serial}/#") as (gw, js):
            reading = await latest(js, "goe", serial, state="C", power_w=11130)
            assert reading.retained is True
            assert reading.online is None  # a retained replay is no sign of life
            car = await raw(js, f"go-eCharger/{serial}/car")
            assert (car[-1].headers or {})[subjects.H_MQTT_RETAIN] == "true"
            before = len(await raw(js, f"go-eCharger/{serial}/nrg"))
            assert gw.counters.connects == 1
            # another client takes the gateway's client id: the broker drops the gateway, which
            # reconnects, resubscribes and is sent every retained value again
            async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier=gw.client_id):
                await eventually(lambda: true(not gw.connected))
            await eventually(lambda: true(gw.counters.connects == 2 and gw.connected))
            await eventually(lambda: true(gw.counters.outcomes.get("replayed", 0) >= 8))
            assert len(await raw(js, f"go-eCharger/{serial}/nrg")) == before


async def test_each_family_through_the_listener(mqtt_settings: Settings, mqtt_port: int) -> None:
    serial, evse, plug, wb = fresh(), f"openevse-{fresh()}", f"plug{fresh()}", fresh()
    shelly_switch = f"shellyplus1pm-{fresh()}"
    shelly_em = f"shellypro3em-{fresh()}"
    openwb_id = str(int(uuid.uuid4().int % 10**6) + 100)
    topics = ",".join(
        [
            f"go-eCharger/{serial}/#",
            f"/go-eCharger/{serial}/#",
            f"{evse}/#",
            f"openevse/announce/{evse[-8:]}",
            f"{wb}/state",
            f"{shelly_switch}/#",
            f"{shelly_em}/#",
            f"tele/{plug}/#",
            f"openWB/chargepoint/{openwb_id}/#",
        ]
    )
    openevse = lines(fixtures.OPENEVSE, **{"openevse-7b2c": evse, "announce/7b2c": f"announce/{evse[-8:]}"})
    async with mqtt_gateway(mqtt_settings, topics) as (_gw, js), device(mqtt_port) as dev:
        await dev.send(lines(fixtures.GOE, **{"012345": serial}), retain=False)
        await dev.send(openevse, retain=False)
        await dev.send([(f"{wb}/state", fixtures.ESP32_HA_BRIDGE[1].encode())], retain=False)
        await dev.send(
            [
                (
                    fixtures.SHELLY_SWITCH[0].replace("shellyplus1pm-a8032ab12345", shelly_switch),
                    fixtures.SHELLY_SWITCH[1].encode(),
                )
            ],
            retain=False,
        )
        await dev.send(
            [(fixtures.SHELLY_3EM[0].replace("shellypro3em-0cb815fcaf1c", shelly_em), fixtures.SHELLY_3EM[1].encode())],
            retain=False,
        )
        await dev.send(lines(fixtures.TASMOTA, plug001=plug), retain=False)
        await dev.send(lines(fixtures.OPENWB, **{"chargepoint/3/": f"chargepoint/{openwb_id}/"})[:7], retain=False)
        goe = await latest(js, "goe", serial, power_w=11130, session_energy_wh=5321.45, energy_wh=1234567)
        assert (goe.state, goe.currents_a, goe.online) == ("C", [16.1, 16, 16.2], True)
        oe = await latest(js, "openevse", evse, temperature_c=24.7, energy_wh=1234560)
        assert (oe.currents_a, oe.state, oe.online) == ([15.8, None, None], "C", True)
        esp = await latest(js, "esp32evse", wb, state="B")
        assert (esp.state_raw, esp.offered_current_a, esp.temperature_c) == ("B2", 16, 31)
        sw = await latest(js, "shelly", shelly_switch, power_w=3650.2)
        assert (sw.energy_wh, sw.kind) == (123456.789, "meter")
        em = await latest(js, "shelly", shelly_em, power_w=11070)
        assert em.currents_a == [16.0, 16.1, 15.9]
        tas = await latest(js, "tasmota", plug, energy_wh=123456)
        assert tas.power_w == 367
        owb = await latest(js, "openwb", f"cp{openwb_id}", phases=3)
        assert (owb.power_w, owb.energy_wh, owb.connected) == (11040.5, 123456.7, True)
        set_cmd = await eventually(lambda: raw(js, f"go-eCharger/{serial}/amp/set"))
        assert (set_cmd[-1].headers or {})[subjects.H_MQTT_OUTCOME] == "ignored"


async def test_go_e_legacy_leading_slash_topics(mqtt_settings: Settings, mqtt_port: int) -> None:
    serial = fresh()
    async with mqtt_gateway(mqtt_settings, f"/go-eCharger/{serial}/#") as (_gw, js), device(mqtt_port) as dev:
        await dev.send(lines(fixtures.GOE_LEGACY, **{"000001": serial}), retain=False)
        reading = await latest(js, "goe", serial, state="A", voltages_v=[15, 0, 0])
        assert reading.raw_topic == f"/go-eCharger/{serial}/nrg"
        stored_raw = await eventually(lambda: raw(js, f"/go-eCharger/{serial}/car"))
        assert stored_raw[-1].subject == f"telemetry.raw.mqtt.%.go-eCharger.{serial}.car"


async def test_malformed_payloads_are_recorded_with_a_reason_and_the_gateway_keeps_going(
    mqtt_settings: Settings, mqtt_port: int
) -> None:
    serial = fresh()
    topics = f"go-eCharger/{serial}/#,odd-{serial}/#"
    events = []

    async with mqtt_gateway(mqtt_settings, topics, mqtt_max_payload=1024) as (gw, js), device(mqtt_port) as dev:

        async def collect(msg: Msg) -> None:
            events.append(msgspec.json.decode(msg.data))

        sub = await gw.nc.subscribe("events.mqtt.>", cb=collect)
        bad = [
            (f"go-eCharger/{serial}/car", b"{not json"),
            (f"go-eCharger/{serial}/nrg", b'"wrong type"'),
            (f"go-eCharger/{serial}/wh", b"\xff\xfe binary"),
            (f"go-eCharger/{serial}/eto", b"9" * 5000),  # huge
            (f"odd-{serial}/a.b/ö/*/>/x", b"odd characters in the topic"),
        ]
        await dev.send(bad, retain=False)
        await dev.send([(f"go-eCharger/{serial}/car", b"2")], retain=False)  # still alive
        reading = await latest(js, "goe", serial, state="C")
        assert reading.changed == ["state", "stateRaw", "connected", "charging", "online"]
        for topic, payload in bad[:3]:
            msg = (await eventually(lambda topic=topic: raw(js, topic)))[0]
            headers = msg.headers or {}
            assert headers[subjects.H_MQTT_OUTCOME] == "invalid"
            assert headers[subjects.H_MQTT_ERROR]
            assert msg.data == payload
        huge = (await eventually(lambda: raw(js, bad[3][0])))[-1]
        assert (huge.data, (huge.headers or {})[subjects.H_MQTT_BYTES]) == (b"", "5000")
        odd = (await eventually(lambda: raw(js, bad[4][0])))[-1]
        assert subjects.mqtt_topic_of(odd.subject) == bad[4][0]
        assert (odd.headers or {})[subjects.H_MQTT_OUTCOME] == "unmatched"
        await eventually(lambda: true(any(e["kind"] == "unmatched" for e in events)))
        invalid = await eventually(lambda: _found([e for e in events if e["kind"] == "invalid"]))
        assert invalid[0]["source"] == "goe"
        assert invalid[0]["reason"]
        await sub.unsubscribe()
        assert gw.connected


async def test_the_embedded_listener_refuses_evbus_s_own_subjects_and_the_status_says_so(
    mqtt_settings: Settings, mqtt_port: int
) -> None:
    """nats.conf gives MQTT clients no rights on evbus's subjects: the gateway's own frames never
    come back to it as MQTT messages, and a subscription there is shown as refused."""
    serial = fresh()
    async with mqtt_gateway(mqtt_settings, f"go-eCharger/{serial}/#,telemetry/#,ocpp/#") as (gw, js):
        assert gw.status().refused_subscriptions == ["telemetry/#", "ocpp/#"]
        await gw.nc.publish(f"ocpp.CP-{serial}.in.Heartbeat", b'[2,"1","Heartbeat",{}]')
        await gw.nc.flush()
        async with device(mqtt_port) as dev:
            await dev.send([(f"go-eCharger/{serial}/car", b"1")], retain=False)
            await latest(js, "goe", serial, state="A")
        assert gw.counters.outcomes.get("dropped", 0) == 0, "nothing of evbus's own came in"
        assert await raw(js, f"ocpp/CP-{serial}/in/Heartbeat") == []
        # from a broker bridged to NATS, which may deliver them, they are dropped unstored
        assert await gw.receive(f"ocpp/CP-{serial}/in/Heartbeat", b"[2]") == "dropped"
        assert await raw(js, f"ocpp/CP-{serial}/in/Heartbeat") == []


async def test_silence_marks_a_device_offline(mqtt_settings: Settings, mqtt_port: int) -> None:
    serial = fresh()
    async with mqtt_gateway(mqtt_settings, f"go-eCharger/{serial}/#", mqtt_silence=0.3) as (_gw, js):
        async with device(mqtt_port) as dev:
            await dev.send([(f"go-eCharger/{serial}/car", b"1")], retain=False)
            await latest(js, "goe", serial, online=True)
        reading = await latest(js, "goe", serial, online=False)
        assert reading.changed == ["online"]
        assert reading.state == "A"  # the last known state stays


def _mosquitto_listening() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 1883)) == 0


@pytest.mark.skipif(not _mosquitto_listening(), reason="no MQTT broker (mosquitto) answers on 127.0.0.1:1883")
async def test_against_the_machines_mosquitto(settings: Settings) -> None:
    serial = fresh()
    mosquitto = settings.with_(mqtt_url="mqtt://127.0.0.1:1883")
    async with mqtt_gateway(mosquitto, f"go-eCharger/{serial}/#,tele/{serial}/#") as (_gw, js), device(1883) as dev:
        await dev.send(lines(fixtures.GOE, **{"012345": serial}), retain=False)
        await dev.send([(f"tele/{serial}/with space/SENSOR", b"{}")], retain=False)  # legal on mosquitto
        reading = await latest(js, "goe", serial, power_w=11130)
        assert reading.state == "C"
        spaced = await eventually(lambda: raw(js, f"tele/{serial}/with space/SENSOR"))
        assert spaced[-1].subject == f"telemetry.raw.mqtt.tele.{serial}.with%20space.SENSOR"


async def _found(items: list[Any]) -> list[Any]:
    return items
