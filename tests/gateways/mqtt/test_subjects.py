"""Raw MQTT subjects and the Mqtt-Topic header: every topic maps to one subject and back."""

from __future__ import annotations

import pytest

from gateways.mqtt.gateway import Broker, header_topic, topic_of_header
from schemas import subjects


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("evcc/loadpoints/1/chargePower", "telemetry.raw.mqtt.evcc.loadpoints.1.chargePower"),
        ("/go-eCharger/000001/car", "telemetry.raw.mqtt.%.go-eCharger.000001.car"),
        ("a//b/", "telemetry.raw.mqtt.a.%.b.%"),
        ("a.b/c", "telemetry.raw.mqtt.a%2Eb.c"),
        ("shellypro3em-1/status/em:0", "telemetry.raw.mqtt.shellypro3em-1.status.em%3A0"),
        ("with space/ö", "telemetry.raw.mqtt.with%20space.%C3%B6"),
        ("*/>/%", "telemetry.raw.mqtt.%2A.%3E.%25"),
        ("single", "telemetry.raw.mqtt.single"),
    ],
)
def test_raw_subjects_escape_each_level_and_round_trip(topic: str, subject: str) -> None:
    assert subjects.mqtt_raw(topic) == subject
    assert subjects.mqtt_topic_of(subject) == topic


def test_raw_subjects_never_look_like_readings() -> None:
    for topic in ("a", "", "a/b"):
        assert len(subjects.mqtt_raw(topic).split(".")) >= 4  # telemetry.*.* is readings only


def test_very_long_topics_are_stored_under_a_digest() -> None:
    subject = subjects.mqtt_raw("x" * 2000)
    assert subject.startswith("telemetry.raw.mqtt.%%.")
    assert len(subject) < 100
    assert subjects.mqtt_topic_of(subject) is None


@pytest.mark.parametrize("topic", ["evcc/status", "ö/ü", "a%41b", "line\nbreak", "tab\there"])
def test_the_topic_header_is_printable_ascii_and_round_trips(topic: str) -> None:
    value = header_topic(topic)
    assert all(0x20 <= ord(c) < 0x7F for c in value)
    assert topic_of_header(value) == topic


def test_broker_urls() -> None:
    assert Broker.parse("mqtt://127.0.0.1:1884") == Broker("127.0.0.1", 1884)
    secure = Broker.parse("mqtts://us%40er:p%3Ass@broker.example")
    assert (secure.port, secure.tls, secure.username, secure.password) == (8883, True, "us@er", "p:ss")
    assert "p:ss" not in secure.address
    assert "p:ss" not in repr(secure)
