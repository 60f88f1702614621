"""The generic mapping file (EVBUS_MQTT_MAPPINGS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.mqtt import generic
from gateways.mqtt.families import builtin
from gateways.mqtt.profiles import Invalid, Update, classify

THINGSBOARD = """
[[mapping]]
source = "thingsboard"
topic = "v1/devices/{device}/telemetry"
payload = "object"

[mapping.fields]
power = { to = "power_w", unit = "kW" }
session = { to = "session_energy_wh", unit = "kWh" }
currentL1 = { to = "currents_a.0", unit = "A" }
charging = { to = "charging" }
"meter.total" = { to = "energy_wh", unit = "Wh" }

[[mapping]]
source = "thingsboard"
topic = "v1/devices/{device}/online"
payload = "text"
fields = { "" = { to = "online" } }
"""


def test_a_toml_mapping_reads_paths_and_converts_units(tmp_path: Path) -> None:
    path = tmp_path / "mappings.toml"
    path.write_text(THINGSBOARD)
    families = generic.load(path) + builtin()
    payload = b'{"power": 3.68, "session": 1.5, "currentL1": 16, "charging": true, "meter": {"total": 42}}'
    assert classify(families, "v1/devices/wb-1/telemetry", payload) == Update(
        "thingsboard",
        "wb-1",
        "evse",
        {"power_w": 3680.0, "session_energy_wh": 1500.0, "currents_a.0": 16.0, "charging": True, "energy_wh": 42.0},
    )
    presence = classify(families, "v1/devices/wb-1/online", b"false")
    assert isinstance(presence, Update)
    assert presence.online is False
    assert isinstance(classify(families, "v1/devices/wb-1/telemetry", b"[1]"), Invalid)


def test_a_json_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "mappings.json"
    path.write_text(
        '{"mapping": [{"source": "meter", "topic": "m/{device}/{key}", "payload": "text",'
        ' "fields": {"p": {"to": "power_w", "unit": "W"}}}]}'
    )
    assert classify(generic.load(path), "m/a/p", b"5") == Update("meter", "a", "evse", {"power_w": 5.0})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[mapping]]\nsource = "raw"\ntopic = "a/{device}"\nfields = {x = "power_w"}', "reserved"),
        ('[[mapping]]\nsource = "s"\ntopic = "a/{device}"\nfields = {x = "watts"}', "unknown target"),
        ('[[mapping]]\nsource = "s"\ntopic = "a/{device}"\nfields = {x = {to = "power_w", unit = "hp"}}', "unit"),
        ('[[mapping]]\nsource = "s"\ntopic = "a/b"\nfields = {x = "power_w"}', "part the topic does not have"),
        ('[[mapping]]\nsource = "s"\ntopic = "a/{device}"\npayload = "xml"\nfields = {x = "power_w"}', "payload"),
        ("not toml [", "mappings.toml"),
    ],
)
def test_mistakes_in_the_file_are_reported_with_their_place(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "mappings.toml"
    path.write_text(text)
    with pytest.raises(generic.MappingError, match=problem):
        generic.load(path)
