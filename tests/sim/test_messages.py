"""What a simulated station sends is valid OCPP of its version; the pre-encoded frames too."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from evbus.sim.charging import Charge
from evbus.sim.device import Device, Transaction
from evbus.sim.messages import messages_for
from evbus.sim.v2.messages import IDLE_NOTIFICATIONS as NOTIFICATIONS_2
from evbus.sim.v16.messages import IDLE_NOTIFICATIONS as NOTIFICATIONS_16
from evbus.sim.wire import ROUNDTRIP_ACTIONS, RoundTripFrames, SecondClock
from schemas.ocpp_j import PROTOCOLS, Protocol
from tests.sim.test_answers import valid


def charging(protocol: Protocol) -> tuple[Device, Any]:
    d = Device(protocol, "SIM-msg", "SN-msg", [1000.0, 2000.0])
    c = d.connectors[1]
    tx = Transaction(
        ocpp_id=17 if protocol == "ocpp1.6" else "4c1f0f0a-tx",
        connector=1,
        id_tag="04A2B3C4",
        token_type="ISO14443",
        meter_start_wh=c.register_wh,
        remote_start_id=None if protocol == "ocpp1.6" else 9,
        reservation_id=3,
    )
    tx.charge = Charge.plugged(random.Random(1), 0.0)
    c.transaction, c.phase = tx, "charging"
    c.register_wh = tx.charge.advance(c.register_wh, 60.0, random.Random(2))
    return d, c


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_whole_session_is_valid(protocol: Protocol) -> None:
    d, c = charging(protocol)
    m = messages_for(d)
    rng = random.Random(3)
    valid(protocol, "BootNotification", m.boot("PowerUp"), "request")
    valid(protocol, "StatusNotification", m.status(c), "request")
    valid(protocol, "Authorize", m.authorize("04A2B3C4", "ISO14443"), "request")
    assert c.transaction is not None
    for action, payload in (
        m.start(c, c.transaction),
        m.update(c, rng),
        m.update(c, rng, trigger=True),
        m.meter_values(c, "Trigger", rng),
        m.stop(c, c.transaction, "EVDisconnected"),
    ):
        valid(protocol, action, payload, "request")
    assert m.status_text(c) == ("Charging" if protocol == "ocpp1.6" else "Occupied")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_meter_values_agree_with_each_other(protocol: Protocol) -> None:
    d, c = charging(protocol)
    _, payload = messages_for(d).update(c, random.Random(4))
    samples = payload["meterValue"][0]["sampledValue"]
    by = {(s["measurand"], s.get("phase")): float(s["value"]) for s in samples}
    assert by[("Energy.Active.Import.Register", None)] == round(c.register_wh)
    assert c.register_wh > 1000.0  # a minute of charging moved the register
    power = by[("Power.Active.Import", None)]
    phases = [p for (m, p) in by if m == "Current.Import"]
    current = sum(by[("Current.Import", p)] * by[("Voltage", f"{p}-N")] for p in phases)
    assert current == pytest.approx(power, rel=0.02)
    assert (("SoC", None) in by) == (protocol != "ocpp1.6")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_started_reads_the_answer(protocol: Protocol) -> None:
    d, c = charging(protocol)
    m = messages_for(d)
    tx = c.transaction
    assert tx is not None
    if protocol == "ocpp1.6":
        assert m.started({"transactionId": 42, "idTagInfo": {"status": "Accepted"}}, tx)
        assert tx.ocpp_id == 42
        assert not m.started({"transactionId": 43, "idTagInfo": {"status": "Invalid"}}, tx)
    else:
        assert m.started({}, tx)
        assert not m.started({"idTokenInfo": {"status": "Unknown"}}, tx)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_triggered_notifications_are_valid(protocol: Protocol) -> None:
    d = Device(protocol, "SIM-msg", "SN-msg", [1000.0, 2000.0])
    m = messages_for(d)
    names = NOTIFICATIONS_16 if protocol == "ocpp1.6" else NOTIFICATIONS_2
    for name in names:
        found = m.notification(name)
        assert found is not None
        valid(protocol, found[0], found[1], "request")
    assert m.notification("Heartbeat") is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_roundtrip_frames(protocol: Protocol) -> None:
    frames = RoundTripFrames(protocol, SecondClock(), 123456)
    seen = []
    for turn in range(6):
        frame = msgspec.json.decode(frames.frame(turn, f"run-{turn}"))
        assert frame[0] == 2
        assert frame[1] == f"run-{turn}"
        valid(protocol, frame[2], frame[3], "request")
        seen.append(frame[2])
    assert seen == list(ROUNDTRIP_ACTIONS) * 2
