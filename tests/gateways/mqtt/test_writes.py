"""Writable settings per family (topics and payloads as ../shared/FORMATS.md and the devices' code
say), the ignore filters operators may add, and the gateway's recent message rate. Pure logic."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateways.mqtt import families
from gateways.mqtt.control import Echoes
from gateways.mqtt.gateway import RecentRate
from gateways.mqtt.ignore import OWN_SUBJECTS, IgnoreFilters, filter_problem
from gateways.mqtt.profiles import Update, classify
from gateways.mqtt.writes import Refused, Write, includes, of_kind, plan, precheck

WRITABLE = families.writable()

# (source, device, the topic it last published on, key, value) → (command topic, payload, echo field)
WRITES: list[tuple[tuple[str, str, str, str, Any], tuple[str, bytes, str | None]]] = [
    (("evcc", "lp1", "evcc/loadpoints/1/mode", "mode", "now"), ("evcc/loadpoints/1/mode/set", b"now", "mode")),
    (
        ("evcc", "lp2", "evcc/loadpoints/2/chargePower", "minCurrent", 6),
        ("evcc/loadpoints/2/minCurrent/set", b"6", "extra.minCurrentA"),
    ),
    (
        ("evcc", "lp1", "evcc/loadpoints/1/mode", "maxCurrent", 16.5),
        ("evcc/loadpoints/1/maxCurrent/set", b"16.5", "extra.maxCurrentA"),
    ),
    (
        ("evcc", "lp1", "evcc/loadpoints/1/mode", "phases", 3),
        ("evcc/loadpoints/1/phasesConfigured/set", b"3", "extra.phasesConfigured"),
    ),
    (
        ("evcc", "lp1", "evcc/loadpoints/1/mode", "limitSoc", 80),
        ("evcc/loadpoints/1/limitSoc/set", b"80", "extra.limitSocPct"),
    ),
    (
        ("evcc", "lp1", "evcc/loadpoints/1/mode", "limitEnergy", 12.5),
        ("evcc/loadpoints/1/limitEnergy/set", b"12.5", "extra.limitEnergyWh"),
    ),
    (("goe", "012345", "go-eCharger/012345/car", "amp", 16), ("go-eCharger/012345/amp/set", b"16", None)),
    (("goe", "000001", "/go-eCharger/000001/car", "frc", 2), ("/go-eCharger/000001/frc/set", b"2", None)),
    (
        ("openevse", "openevse-7b2c", "openevse-7b2c/state", "override", {"state": "active", "charge_current": 16}),
        ("openevse-7b2c/override/set", b'{"state":"active","charge_current":16}', "extra.override"),
    ),
    (
        ("openevse", "openevse-7b2c", "openevse-7b2c/state", "claim", "release"),
        ("openevse-7b2c/claim/set", b"release", "extra.claim"),
    ),
    (
        ("openevse", "openevse-7b2c", "openevse-7b2c/state", "divertmode", 2),
        ("openevse-7b2c/divertmode/set", b"2", "extra.divertMode"),
    ),
    (("esp32evse", "evse", "evse/state", "enabled", False), ("evse/enabled/set", b"OFF", "enabled")),
    (("esp32evse", "evse", "evse/state", "current", 10), ("evse/current/set", b"10", "offered_current_a")),
]


@pytest.mark.parametrize(("request_", "expected"), WRITES, ids=[f"{w[0][0]}-{w[0][3]}" for w in WRITES])
def test_each_family_writes_its_command_topic_and_payload(
    request_: tuple[str, str, str, str, Any], expected: tuple[str, bytes, str | None]
) -> None:
    source, device, seen_on, key, value = request_
    planned = plan(WRITABLE[source], device, seen_on, key, value)
    assert isinstance(planned, Write), planned
    topic, payload, echo = expected
    assert (planned.topic, planned.payload, planned.retain) == (topic, payload, False)
    if echo is not None:
        assert planned.echo == echo


@pytest.mark.parametrize(
    ("source", "key", "value", "reason"),
    [
        ("evcc", "mode", "fast", 'expected one of off, now, minpv, pv, got "fast"'),
        ("evcc", "phases", 2, "expected one of 0, 1, 3, got 2"),
        ("evcc", "phases", "3", 'expected one of 0, 1, 3, got "3"'),
        ("evcc", "limitSoc", 80.5, "expected a whole number, got 80.5"),
        ("evcc", "limitSoc", 101, "expected 0 to 100, got 101"),
        ("evcc", "minCurrent", True, "expected a number, got true"),
        ("goe", "amp", 5, "expected 6 to 32, got 5"),
        ("goe", "amp", 33, "expected 6 to 32, got 33"),
        ("goe", "frc", 3, "expected one of 0, 1, 2, got 3"),
        ("openevse", "override", {"state": "on"}, 'state: expected one of active, disabled, got "on"'),
        ("openevse", "override", {"colour": 1}, "unknown member(s) colour"),
        ("openevse", "override", "toggle", "expected an object or one of clear"),
        ("openevse", "claim", "clear", "expected an object or one of release"),
        ("esp32evse", "enabled", "ON", 'expected true or false, got "ON"'),
        ("esp32evse", "current", 64, "expected 6 to 63, got 64"),
    ],
)
def test_values_a_family_does_not_take_are_refused_with_the_reason(
    source: str, key: str, value: Any, reason: str
) -> None:
    refused = precheck(WRITABLE[source], key, value)
    assert isinstance(refused, Refused)
    assert refused.outcome == "invalid"
    assert reason in refused.reason


@pytest.mark.parametrize(
    ("source", "key", "value", "reason"),
    [
        ("evcc", "mode", 1, "expected one of off, now, minpv, pv, got 1"),
        ("evcc", "minCurrent", None, "expected a number, got null"),
        ("evcc", "minCurrent", "6", 'expected a number, got "6"'),
        ("evcc", "maxCurrent", 125.5, "expected 0 to 125, got 125.5"),
        ("evcc", "limitEnergy", -1, "expected 0 to 1000, got -1"),
        ("goe", "frc", True, "expected one of 0, 1, 2, got true"),
        ("goe", "amp", 16.5, "expected a whole number, got 16.5"),
        (
            "openevse",
            "override",
            {},
            "expected an object of state, charge_current, max_current, auto_release, or one of clear",
        ),
        (
            "openevse",
            "claim",
            [],
            "expected an object of state, charge_current, max_current, auto_release, or one of release",
        ),
        ("openevse", "claim", {"charge_current": 81}, "charge_current: expected 0 to 80, got 81"),
        ("openevse", "claim", {"auto_release": 1}, "auto_release: expected true or false, got 1"),
        ("openevse", "divertmode", 1.5, "expected one of 1, 2, got 1.5"),
        ("esp32evse", "enabled", 1, "expected true or false, got 1"),
    ],
)
def test_more_values_refused_word_for_word(source: str, key: str, value: Any, reason: str) -> None:
    refused = precheck(WRITABLE[source], key, value)
    assert isinstance(refused, Refused)
    assert refused.reason == f"{key}: {reason}"


@pytest.mark.parametrize(
    ("source", "key", "value", "taken"),
    [
        ("evcc", "mode", "minpv", "minpv"),
        ("evcc", "phasesConfigured", 3.0, 3),  # a whole float is the number
        ("evcc", "limitSoc", 80.0, 80),
        ("evcc", "minCurrent", 6.5, 6.5),
        ("evcc", "maxCurrent", 0, 0),
        ("evcc", "limitEnergy", 1000, 1000),
        ("goe", "amp", 32, 32),
        ("goe", "frc", 0, 0),
        ("openevse", "override", {"charge_current": "clear", "auto_release": True}, None),
        ("openevse", "claim", {"state": "disabled", "max_current": 6.5}, None),
        ("openevse", "override", "clear", "clear"),
        ("openevse", "divertmode", 2, 2),
        ("esp32evse", "enabled", True, True),
        ("esp32evse", "current", 63, 63),
    ],
)
def test_values_a_family_takes_are_checked_into_what_the_device_takes(
    source: str, key: str, value: Any, taken: Any
) -> None:
    checked = WRITABLE[source][0].settings[key].check(value)
    expected = value if taken is None else taken
    assert (checked, type(checked)) == (expected, type(expected))


def test_every_built_in_setting_describes_itself_as_json() -> None:
    for writables in WRITABLE.values():
        for writable in writables:
            assert writable.kinds == ("evse",)
            for setting in writable.settings.values():
                described = setting.check.describe()
                assert described["type"] in ("choice", "number", "flag", "object")
                assert msgspec.json.decode(msgspec.json.encode(described)) == described
    evcc, goe = WRITABLE["evcc"][0].settings, WRITABLE["goe"][0].settings
    openevse, esp32 = WRITABLE["openevse"][0].settings, WRITABLE["esp32evse"][0].settings
    assert evcc["mode"].check.describe() == {"type": "choice", "options": ["off", "now", "minpv", "pv"]}
    assert goe["amp"].check.describe() == {"type": "number", "min": 6, "max": 32, "integer": True}
    assert esp32["enabled"].check.describe() == {"type": "flag"}
    assert openevse["override"].check.describe() == {
        "type": "object",
        "fields": {
            "state": {"type": "choice", "options": ["active", "disabled"]},
            "charge_current": {"type": "number", "min": 0, "max": 80, "integer": False, "unit": "A"},
            "max_current": {"type": "number", "min": 0, "max": 80, "integer": False, "unit": "A"},
            "auto_release": {"type": "flag"},
        },
        "words": ["clear"],
    }
    assert openevse["claim"].check.describe()["words"] == ["release"]
    units = {key: s.unit for ws in WRITABLE.values() for w in ws for key, s in w.settings.items()}
    assert units == {
        "mode": None, "minCurrent": "A", "maxCurrent": "A", "phasesConfigured": None, "phases": None,
        "limitSoc": "%", "limitEnergy": "kWh", "amp": "A", "frc": None, "override": None, "claim": None,
        "divertmode": None, "enabled": None, "current": "A",
    }  # fmt: skip
    assert evcc["limitEnergy"].scale == 1000
    assert [key for ws in WRITABLE.values() for w in ws for key, s in w.settings.items() if s.scale] == ["limitEnergy"]
    assert evcc["phases"] is evcc["phasesConfigured"]  # an alias: the API lists it with aliasOf


def test_the_api_lists_settings_by_kind_and_the_gateway_keeps_its_topic_check() -> None:
    assert of_kind(WRITABLE["evcc"], "evse") is WRITABLE["evcc"][0]
    assert of_kind(WRITABLE["evcc"], "site") is None
    assert of_kind(WRITABLE["esp32evse"], None) is None
    esp32 = of_kind(WRITABLE["esp32evse"], "evse")
    assert esp32 is not None
    assert esp32.timeout_s == 20.0  # its bridge shows a write with its next state message


def test_unknown_keys_list_the_valid_ones() -> None:
    refused = precheck(WRITABLE["goe"], "psm", 1)
    assert isinstance(refused, Refused)
    assert (refused.outcome, refused.valid_keys) == ("unknown_key", ("amp", "frc"))
    evcc = plan(WRITABLE["evcc"], "lp1", "evcc/loadpoints/1/mode", "batteryBoost", True)
    assert isinstance(evcc, Refused)
    assert evcc.valid_keys == (
        "limitEnergy",
        "limitSoc",
        "maxCurrent",
        "minCurrent",
        "mode",
        "phases",
        "phasesConfigured",
    )


def test_a_device_of_the_family_without_settings_takes_none() -> None:
    """The evcc site publishes under evcc/site/…: loadpoint settings are not its."""
    refused = plan(WRITABLE["evcc"], "site", "evcc/site/pvPower", "mode", "now")
    assert isinstance(refused, Refused)
    assert (refused.outcome, refused.valid_keys) == ("unknown_key", ())


def test_echoes_are_compared_as_the_device_normalises_them() -> None:
    energy = plan(WRITABLE["evcc"], "lp1", "evcc/loadpoints/1/mode", "limitEnergy", 12.5)
    assert isinstance(energy, Write)
    assert energy.shows(energy.value, 12500.0)  # published in kWh, normalised to Wh
    assert not energy.shows(energy.value, 12.5)
    amp = plan(WRITABLE["goe"], "012345", "go-eCharger/012345/car", "amp", 16)
    assert isinstance(amp, Write)
    assert amp.shows(16, 16.0)
    assert includes({"state": "active", "charge_current": 16}, {"state": "active", "charge_current": 16, "x": 1})
    assert not includes({"state": "active"}, {"state": "disabled"})
    assert includes({"charge_current": "clear"}, {"state": "active"})
    assert includes("clear", None)
    assert not includes("clear", {"state": "active"})


def test_the_echoed_values_are_normalised_fields() -> None:
    fams = families.builtin()
    evcc = classify(fams, "evcc/loadpoints/1/limitEnergy", b"12.5")
    assert isinstance(evcc, Update)
    assert evcc.values == {"extra.limitEnergyWh": 12500.0}
    override = classify(fams, "openevse-7b2c/override", b'{"state":"active","charge_current":16}')
    assert isinstance(override, Update)
    assert override.values == {"extra.override": {"state": "active", "charge_current": 16}}
    cleared = classify(fams, "openevse-7b2c/override", b'{"state":"null"}')
    assert isinstance(cleared, Update)
    assert cleared.values == {"extra.override": None}


def test_esp32_evse_commands_are_the_familys_ignored_topics_once_the_device_is_known() -> None:
    fams = families.builtin()
    assert classify(fams, "wallbox/current/set", b"10") is None  # not known yet: unmatched
    classify(fams, "wallbox/state", b'{"state":"B2","current":16}')
    found = classify(fams, "wallbox/current/set", b"10")
    assert found is not None
    assert found.source == "esp32evse"
    assert type(found).__name__ == "Ignored"


async def test_echoes_resolve_only_on_the_value_written() -> None:
    echoes = Echoes()
    write = plan(WRITABLE["evcc"], "lp1", "evcc/loadpoints/1/mode", "mode", "now")
    assert isinstance(write, Write)
    future = echoes.expect("evcc", "lp1", write)
    echoes.saw(Update("evcc", "lp1", values={"mode": "pv"}))
    echoes.saw(Update("evcc", "lp2", values={"mode": "now"}))
    assert not future.done()
    echoes.saw(Update("evcc", "lp1", values={"mode": "now"}))
    assert future.done()
    echoes.forget("evcc", "lp1", future)
    assert not echoes


@pytest.mark.parametrize(
    ("topic_filter", "problem"),
    [
        ("", "not empty"),
        ("#", "name at least one level"),
        ("+/+/#", "name at least one level"),
        ("a/#/b", "whole last level"),
        ("a/b#", "whole last level"),
        ("a/b+/c", "whole level"),
        ("a\x00b", "control characters"),
        (" a/b", "whitespace"),
        ("a" * 257, "at most 256 bytes"),
    ],
)
def test_invalid_ignore_filters_are_refused(topic_filter: str, problem: str) -> None:
    found = filter_problem(topic_filter)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("topic_filter", ["a/b", "a/+/c", "a/#", "+/status", "/go-eCharger/+/nrg", "tele/plug 1/#"])
def test_valid_ignore_filters(topic_filter: str) -> None:
    assert filter_problem(topic_filter) is None


def test_operator_filters_join_the_built_in_and_setting_ones() -> None:
    filters = IgnoreFilters(["noisy/#"])
    assert filters.drops("ocpp/CP1/in/Heartbeat")
    assert filters.drops("noisy/a")
    assert not filters.drops("evcc/loadpoints/1/mode")
    filters.replace_operator(["evcc/loadpoints/+/mode", "#"])  # an invalid one never applies
    assert filters.operator == ("evcc/loadpoints/+/mode",)
    assert filters.drops("evcc/loadpoints/1/mode")
    assert not filters.drops("evcc/loadpoints/1/chargePower")
    assert filters.all() == (*OWN_SUBJECTS, "noisy/#", "evcc/loadpoints/+/mode")
    filters.replace_operator([])
    assert not filters.drops("evcc/loadpoints/1/mode")


def test_the_message_rate_is_recent_not_a_lifetime_average() -> None:
    rate = RecentRate(1000.0, window=10)
    for n in range(50):
        rate.tick(1000.0 + n / 10)  # 10 a second for 5 s
    assert rate.per_second(1005.0) == 10.0
    assert rate.per_second(1012.0) == pytest.approx(2.0)  # 2 s of them left in the window
    assert rate.per_second(1100.0) == 0.0
    rate.tick(1100.5)
    assert rate.per_second(1101.0) == 0.1
