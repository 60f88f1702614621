"""The embedded MQTT listener's rights (nats.conf): an MQTT client can neither write into nor read
evbus's own subjects, where MQTT topics are NATS subjects; its own topics work as before."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from evbus.embedded_nats import NATS_CONF
from gateways.mqtt.ignore import OWN_SUBJECTS
from schemas import subjects
from tests.support import eventually


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


async def _true(value: bool) -> bool:
    return value


async def test_an_mqtt_client_cannot_forge_frames_commands_or_bucket_entries(nc: NATS, mqtt_port: int) -> None:
    station, tag = f"FORGE-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    got: list[str] = []

    async def arrived(msg: Msg) -> None:
        got.append(msg.subject)

    for subject in (f"ocpp.{station}.>", f"cmd.{station}.>", f"$KV.{subjects.BUCKET_REGISTRY}.{station}", f"dev.{tag}"):
        await nc.subscribe(subject, cb=arrived)
    await nc.flush()
    async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier=f"forger-{tag}") as client:
        await client.publish(f"ocpp/{station}/in/BootNotification", b'[2,"1","BootNotification",{}]', qos=1)
        await client.publish(f"cmd/{station}/reset", b"{}", qos=1)
        await client.publish(f"$KV/{subjects.BUCKET_REGISTRY}/{station}", b'{"password": "x"}', qos=1)
        await client.publish(f"dev/{tag}", b"a device's own topic", qos=1)  # after the others, on one connection
    await eventually(lambda: _true(f"dev.{tag}" in got))
    assert got == [f"dev.{tag}"], "only the device's own topic reached NATS"


async def test_an_mqtt_client_subscribed_to_everything_sees_none_of_evbus_s_subjects(nc: NATS, mqtt_port: int) -> None:
    station, tag = f"PEEK-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    seen: list[str] = []
    async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier=f"peeker-{tag}") as client:
        await client.subscribe("#", qos=0)

        async def read() -> None:
            async for message in client.messages:
                seen.append(str(message.topic))

        reading = asyncio.create_task(read())
        try:
            await nc.publish(subjects.ocpp_frame(station, "in", "Heartbeat"), b'[2,"1","Heartbeat",{}]')
            await nc.publish(f"_INBOX.{tag}", b"a reply")
            await nc.publish(f"dev.{tag}", b"to the device")
            await eventually(lambda: _true(f"dev/{tag}" in seen))
        finally:
            reading.cancel()
    assert [t for t in seen if station in t or tag in t] == [f"dev/{tag}"]


async def test_evbus_s_own_user_cannot_connect_over_mqtt(mqtt_port: int) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "127.0.0.1",
            mqtt_port,
            identifier=f"x-{uuid.uuid4().hex[:6]}",
            username="evbus",
            password="no-credentials-needed",
        ):
            pass


async def test_a_device_that_must_send_credentials_uses_the_device_user(mqtt_port: int) -> None:
    async with aiomqtt.Client(
        "127.0.0.1", mqtt_port, identifier=f"y-{uuid.uuid4().hex[:6]}", username="mqtt-device", password="mqtt-device"
    ) as client:
        await client.publish(f"dev/{uuid.uuid4().hex[:6]}", b"1", qos=1)


def test_nats_conf_denies_mqtt_devices_every_subject_evbus_calls_its_own() -> None:
    text = Path(NATS_CONF).read_text()
    denied = [
        set(re.findall(r'"([^"]+)"', line))
        for line in text.splitlines()
        if re.search(r"^\s*(publish|subscribe): \{ deny:", line)
    ]
    assert len(denied) == 2, "a publish and a subscribe deny list"
    own = {f.replace("/#", ".>").replace("/", ".") for f in OWN_SUBJECTS}
    for rights in denied:
        assert own <= rights, own - rights
        assert {"$JS.>", "$KV.>"} <= rights
    assert re.search(r"mqtt \{[^}]*no_auth_user: mqtt-device", text), "MQTT clients without credentials are mqtt-device"
