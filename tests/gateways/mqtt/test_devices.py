"""Folding updates into device snapshots: phases, unset values, presence, silence."""

from __future__ import annotations

from gateways.mqtt.devices import Devices, RecentSet
from gateways.mqtt.families import Esp32Evse
from gateways.mqtt.profiles import Ignored, Update


def test_a_snapshot_carries_every_known_field_and_names_the_changed_ones() -> None:
    devices = Devices()
    (state,) = devices.targets(Update("evcc", "lp1", values={"power_w": 10.0}))
    assert state.apply(Update("evcc", "lp1", values={"power_w": 10.0}), live=True) == ["powerW", "online"]
    assert state.apply(Update("evcc", "lp1", values={"currents_a.1": 6.0}), live=True) == ["currentsA"]
    assert state.apply(Update("evcc", "lp1", values={"power_w": 10.0}), live=True) == []
    reading = state.reading("t", [])
    assert (reading.power_w, reading.currents_a, reading.online) == (10.0, [None, 6.0, None], True)


def test_erasing_every_phase_unsets_the_list() -> None:
    (state,) = Devices().targets(Update("evcc", "lp1"))
    state.apply(Update("evcc", "lp1", values={"currents_a.0": 6.0}), live=True)
    assert state.apply(Update("evcc", "lp1", values={"currents_a.0": None}), live=True) == ["currentsA"]
    assert state.reading("t", []).currents_a is None


def test_retained_replays_are_no_sign_of_life_and_silence_is_offline() -> None:
    devices = Devices()
    (state,) = devices.targets(Update("goe", "1"))
    assert state.apply(Update("goe", "1", values={"power_w": 1.0}), live=False) == ["powerW"]
    assert state.reading("t", []).online is None
    state.apply(Update("goe", "1"), live=True)
    state.seen(100.0, "then")
    assert devices.silent(150.0, 60.0) == []
    assert devices.silent(161.0, 60.0) == [state]
    assert state.reading("t", []).online is False
    assert devices.silent(200.0, 60.0) == []  # said once


def test_fan_out_presence_reaches_every_device_of_the_group_only() -> None:
    devices = Devices()
    for device, group in (("lp1", "evcc"), ("lp2", "evcc"), ("lp1x", "other")):
        devices.targets(Update("evcc", device, group=group))
    targets = devices.targets(Update("evcc", "site", online=False, group="evcc", fan_out=True))
    assert sorted(t.device for t in targets) == ["lp1", "lp2", "site"]


def test_the_table_is_bounded() -> None:
    devices = Devices(max_devices=2)
    for n in range(5):
        devices.targets(Update("x", str(n)))
    assert len(devices) == 2
    assert devices.targets(Update("x", "new")) == []


def test_what_families_remember_of_topics_is_bounded() -> None:
    remembered = RecentSet(limit=3)
    for name in ("a", "b", "c", "a", "d"):  # "a" added again: it is recent, "b" is the oldest
        remembered.add(name)
    assert len(remembered) == 3
    assert "b" not in remembered
    assert all(name in remembered for name in ("a", "c", "d"))
    evse = Esp32Evse(ids=RecentSet(limit=100))
    for n in range(1000):
        evse.apply(f"evse{n}/state", b'{"state":"A1","enabled":true}')
    assert len(evse.ids) == 100
    assert isinstance(evse.apply("evse999/enabled/set", b"ON"), Ignored)  # a recent one's command
