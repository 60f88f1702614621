"""Each built-in family against the FORMATS.md fixtures: pure logic, no broker."""

from __future__ import annotations

import msgspec

from gateways.mqtt.devices import Devices
from gateways.mqtt.families import ESP32_EVSE, TASMOTA_SENSOR, builtin
from gateways.mqtt.profiles import Family, Ignored, Invalid, Update, classify, convert
from schemas.telemetry import Reading
from tests.gateways.mqtt import fixtures
from tests.gateways.mqtt.fixtures import lines


def fold(messages: list[tuple[str, bytes]], families: tuple[Family, ...] | None = None) -> dict[str, Reading]:
    """What the gateway's device table holds after these messages (live), as readings by device."""
    families = families or builtin()
    devices = Devices()
    for topic, payload in messages:
        outcome = classify(families, topic, payload)
        if isinstance(outcome, Update):
            for state in devices.targets(outcome):
                state.apply(outcome, live=True)
    found = {}
    for source, device in list(devices._devices):
        state = devices.get(source, device)
        assert state is not None
        found[f"{source}/{device}"] = state.reading("t", [])
    return found


def test_evcc_loadpoint_and_site_from_plain_text_scalars() -> None:
    found = fold(lines(fixtures.EVCC_STARTUP))
    lp = found["evcc/lp1"]
    assert (lp.connected, lp.charging, lp.enabled, lp.mode, lp.title) == (True, True, True, "pv", "Garage")
    assert lp.power_w == 3680.5
    assert lp.currents_a == [16.01, 0, 0]  # from /l1../l3; the base topic (a sum) is not a phase
    assert lp.voltages_v == [231.2, 230.8, 231.1]  # not 693.1
    assert lp.session_energy_wh == 2345.678  # Wh as evcc's code publishes it
    assert lp.energy_wh == 1234567.0  # chargeTotalImport is kWh
    assert lp.soc_pct == 55
    assert lp.phases == 1
    assert lp.online is True
    assert lp.extra == {"chargeDurationS": 1820}  # vehicleName "" is unset, not ""
    assert lp.state is None  # evcc gives no IEC state on MQTT: none is made up
    site = found["evcc/site"]
    assert (site.kind, site.power_w, site.extra) == ("site", -1250.5, {"pvPowerW": 4200})


def test_evcc_empty_payloads_unset_values_and_set_topics_are_not_telemetry() -> None:
    families = builtin()
    assert classify(families, "evcc/loadpoints/1/chargePower", b"") == Update(
        "evcc", "lp1", "evse", {"power_w": None}, group="evcc"
    )
    assert isinstance(classify(families, "evcc/loadpoints/1/mode/set", b"now"), Ignored)
    assert isinstance(classify(families, "evcc/loadpoints/1/chargeCurrents", b"16.01"), Ignored)
    found = fold(lines(fixtures.EVCC_STARTUP) + lines(fixtures.EVCC_UNPLUG))
    lp = found["evcc/lp1"]
    assert (lp.connected, lp.charging, lp.power_w, lp.mode) == (False, False, 0, "now")


def test_evcc_status_offline_is_every_device_of_that_evcc() -> None:
    found = fold([*lines(fixtures.EVCC_STARTUP), ("evcc/status", b"offline")])
    assert found["evcc/lp1"].online is False
    assert found["evcc/site"].online is False


def test_evcc_nan_and_inf_are_unknown_not_errors() -> None:
    assert classify(builtin(), "evcc/loadpoints/1/vehicleSoc", b"NaN") == Update(
        "evcc", "lp1", "evse", {"soc_pct": None}, group="evcc"
    )


def test_goe_json_values_nrg_array_and_car_state() -> None:
    lp = fold(lines(fixtures.GOE))["goe/012345"]
    assert (lp.state, lp.state_raw, lp.connected, lp.charging, lp.enabled) == ("C", "2", True, True, True)
    assert lp.voltages_v == [231, 230, 232]
    assert lp.currents_a == [16.1, 16, 16.2]
    assert lp.power_w == 11130
    assert (lp.session_energy_wh, lp.energy_wh, lp.errors) == (5321.45, 1234567, [])
    assert lp.extra == {"requestedCurrentA": 16}


def test_goe_old_firmware_leading_slash_is_the_same_family() -> None:
    lp = fold(lines(fixtures.GOE_LEGACY))["goe/000001"]
    assert (lp.state, lp.connected, lp.charging) == ("A", False, False)
    assert lp.voltages_v == [15, 0, 0]


def test_goe_wrong_shapes_are_invalid_with_a_reason() -> None:
    families = builtin()
    short = classify(families, "go-eCharger/1/nrg", b"[1,2]")
    assert isinstance(short, Invalid)
    assert "nrg" in short.reason
    bad = classify(families, "go-eCharger/1/car", b"{oops")
    assert isinstance(bad, Invalid)
    assert "not JSON" in bad.reason
    assert isinstance(classify(families, "go-eCharger/1/car", b"42"), Invalid)  # not a car state
    assert isinstance(classify(families, "go-eCharger/1/wh", b'"lots"'), Invalid)


def test_openevse_announce_ma_tenths_of_degrees_and_kwh_totals() -> None:
    evse = fold(lines(fixtures.OPENEVSE))["openevse/openevse-7b2c"]
    assert evse.online is True
    assert evse.title == "openevse-7b2c"
    assert (evse.state, evse.state_raw, evse.connected, evse.charging) == ("C", "3", True, True)
    assert evse.currents_a == [15.8, None, None]  # 15800 mA
    assert evse.voltages_v == [240, None, None]
    assert (evse.power_w, evse.offered_current_a) == (3792, 16)
    assert evse.session_energy_wh == 5321.4
    assert evse.energy_wh == 1234560  # kWh
    assert evse.temperature_c == 24.7  # 0.1 °C


def test_openevse_lwt_and_error_states() -> None:
    messages = [
        *lines(fixtures.OPENEVSE),
        ("openevse-7b2c/state", b"6"),
        ("openevse/announce/7b2c", b'{"state":"disconnected","mqtt":"openevse-7b2c"}'),
    ]
    evse = fold(messages)["openevse/openevse-7b2c"]
    assert (evse.state, evse.errors, evse.online) == ("E", ["gfi_fault"], False)


def test_openevse_learns_a_base_topic_from_its_announce() -> None:
    families = builtin()
    assert classify(families, "garage-charger/amp", b"6000") is None
    classify(families, "openevse/announce/1a2b", b'{"state":"connected","mqtt":"garage-charger"}')
    assert classify(families, "garage-charger/amp", b"6000") == Update(
        "openevse", "garage-charger", "evse", {"currents_a.0": 6.0}
    )


def test_esp32_evse_lua_bridge_state() -> None:
    found = fold([(fixtures.ESP32_HA_BRIDGE[0], fixtures.ESP32_HA_BRIDGE[1].encode())])
    evse = found["esp32evse/evse"]
    assert (evse.state, evse.state_raw, evse.connected, evse.charging, evse.enabled) == ("B", "B2", True, False, True)
    assert (evse.power_w, evse.offered_current_a, evse.session_energy_wh, evse.temperature_c) == (0, 16, 0, 31)
    assert evse.errors == []


def test_esp32_evse_full_state_with_phases_wh_and_errors() -> None:
    charging = fold([("wallbox/state", fixtures.ESP32_STATE_C2.encode())])["esp32evse/wallbox"]
    assert (charging.state, charging.charging, charging.power_w) == ("C", True, 3680)
    assert (charging.session_energy_wh, charging.energy_wh) == (1779, 412900)  # Wh, not Ws
    assert charging.voltages_v == [231.4, 0, 0]
    assert charging.currents_a == [16, 0, 0]
    assert charging.offered_current_a == 16
    error = fold([("wallbox/state", fixtures.ESP32_STATE_E.encode())])["esp32evse/wallbox"]
    assert (error.state, error.errors, error.charging) == ("E", ["rcm_triggered"], False)


def test_esp32_evse_energy_in_ws_is_flagged_not_stored() -> None:
    outcome = classify(builtin(), "wallbox/state", b'{"state":"C2","consumption":6404400}')
    assert isinstance(outcome, Update)
    assert "session_energy_wh" not in outcome.values
    assert outcome.flags
    assert "sessionEnergyWh 6.4044e+06 is implausible" in outcome.flags[0]
    assert "3600x" in outcome.flags[0]


def test_a_state_topic_that_is_not_esp32_evse_is_not_taken() -> None:
    assert classify(builtin(), "somewhere/state", b'{"state":"on"}') is None
    assert classify(builtin(), "somewhere/state", b"ON") is None


def test_shelly_switch_and_3em() -> None:
    found = fold([(t, p.encode()) for t, p in (fixtures.SHELLY_SWITCH, fixtures.SHELLY_3EM)])
    switch = found["shelly/shellyplus1pm-a8032ab12345"]
    assert (switch.kind, switch.power_w, switch.energy_wh, switch.enabled) == ("meter", 3650.2, 123456.789, True)
    assert (switch.voltages_v, switch.currents_a, switch.temperature_c) == (
        [231.4, None, None],
        [15.8, None, None],
        46.3,
    )
    em = found["shelly/shellypro3em-0cb815fcaf1c"]
    assert em.currents_a == [16.0, 16.1, 15.9]
    assert em.voltages_v == [231.0, 230.2, 231.5]
    assert em.power_w == 11070


def test_shelly_other_switches_are_devices_of_their_own() -> None:
    outcome = classify(builtin(), "shellypro4pm-1/status/switch:2", b'{"id":2,"apower":5}')
    assert isinstance(outcome, Update)
    assert outcome.device == "shellypro4pm-1/2"


def test_tasmota_sensor_kwh_total_and_lwt() -> None:
    plug = fold(lines(fixtures.TASMOTA))["tasmota/plug001"]
    assert (plug.power_w, plug.energy_wh, plug.online) == (367, 123456, True)
    assert (plug.voltages_v, plug.currents_a) == ([235, None, None], [2.156, None, None])
    assert plug.extra == {"todayWh": 337}
    offline = fold([*lines(fixtures.TASMOTA), ("tele/plug001/LWT", b"Offline")])["tasmota/plug001"]
    assert offline.online is False


def test_tasmota_three_phase_arrays() -> None:
    payload = b'{"ENERGY":{"Total":1,"Power":[100,200,300],"Voltage":[230,231,232],"Current":[1,2,3]}}'
    meter = fold([("tele/meter3/SENSOR", payload)])["tasmota/meter3"]
    assert (meter.power_w, meter.voltages_v, meter.currents_a) == (600, [230, 231, 232], [1, 2, 3])


def test_openwb_2_chargepoint_and_1_9_loadpoint() -> None:
    found = fold(lines(fixtures.OPENWB))
    cp = found["openwb/cp3"]
    assert (cp.power_w, cp.currents_a, cp.voltages_v) == (11040.5, [16.0, 16.1, 15.9], [230.1, 229.8, 231.0])
    assert (cp.energy_wh, cp.connected, cp.charging, cp.phases) == (123456.7, True, True, 3)
    lp = found["openwb/lp1"]
    assert (lp.power_w, lp.connected, lp.energy_wh) == (11040, True, 1234567)


def test_openwb_inbound_mqtt_chargepoint_is_its_own_device() -> None:
    outcome = classify(builtin(), "openWB/mqtt/chargepoint/4/get/power", b"7000")
    assert outcome == Update("openwb", "mqtt-cp4", "evse", {"power_w": 7000.0})


def test_unknown_topics_match_no_family() -> None:
    families = builtin()
    for topic in ("homeassistant/sensor/x/config", "zigbee2mqtt/bridge/state", "a", "ö/ü", "x//y"):
        assert classify(families, topic, b"{}") is None


def test_an_implausible_phase_value_is_flagged_like_a_single_one() -> None:
    """Per-phase lists (Tasmota ENERGY.Current, the esp32-evse v0.5 currents) are checked once, by
    convert(), so the value left out also leaves its flag."""
    for spec in (TASMOTA_SENSOR["ENERGY.Current"], ESP32_EVSE["current"]):
        values, flags = convert(spec, [5000, 1, 2])
        assert values == {"currents_a.1": 1.0, "currents_a.2": 2.0}
        assert len(flags) == 1
        assert "currentsA 5000 is implausible" in flags[0]


def test_a_reading_always_carries_kind_and_changed() -> None:
    """docs/subjects.md lists both as always present: no default may drop them from the JSON."""
    reading = Reading(source="evcc", device="lp1", kind="evse", ts="2026-11-21T00:00:00Z", changed=[])
    assert msgspec.json.decode(msgspec.json.encode(reading)) == {
        "source": "evcc",
        "device": "lp1",
        "kind": "evse",
        "ts": "2026-11-21T00:00:00Z",
        "changed": [],
    }
