"""What the MQTT gateway's tests and the API's device tests share: a device (a real MQTT client),
a running gateway, and reading what it stored."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from nats.aio.msg import Msg

from evbus import bootstrap
from evbus.settings import Settings
from gateways.mqtt.gateway import MqttGateway
from schemas import subjects
from schemas.telemetry import Reading, decode_reading
from tests.support import eventually, stored


class Device:
    """A real MQTT client publishing as a device would; retained topics are cleared on exit, so
    no other test of the session gets them replayed."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.retained: set[str] = set()

    async def send(self, messages: list[tuple[str, bytes]], retain: bool = True) -> None:
        for topic, payload in messages:
            await self.client.publish(topic, payload, qos=1, retain=retain)
            if retain:
                self.retained.add(topic)


@contextlib.asynccontextmanager
async def device(port: int) -> AsyncIterator[Device]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"device-{uuid.uuid4().hex[:8]}") as client:
        dev = Device(client)
        try:
            yield dev
        finally:
            for topic in dev.retained:
                await client.publish(topic, b"", qos=1, retain=True)


@contextlib.asynccontextmanager
async def mqtt_gateway(settings: Settings, topics: str, **changes: Any) -> AsyncIterator[tuple[MqttGateway, Any]]:
    """A gateway on a NATS connection of its own, connected to its broker (a new gateway id unless
    ``gateway_id`` is given)."""
    changes = {"gateway_id": f"gw-{uuid.uuid4().hex[:6]}", **changes}
    settings = settings.with_(mqtt_topics=topics, **changes)
    async with bootstrap.bus(settings, embedded=False) as b, bootstrap.mqtt_gateway(b, settings) as gw:
        await eventually(lambda: true(gw.connected))
        yield gw, b.nc.jetstream()


async def true(value: bool) -> bool:
    return value


async def readings(js: Any, source: str, device: str) -> list[Reading]:
    msgs = await stored(js, subjects.telemetry(source, device), subjects.STREAM_TELEMETRY)
    return [decode_reading(m.data) for m in msgs]


async def latest(js: Any, source: str, device: str, **expected: Any) -> Reading:
    """The newest reading of a device once it has the expected values."""

    async def check() -> Reading | None:
        found = await readings(js, source, device)
        if found and all(getattr(found[-1], k) == v for k, v in expected.items()):
            return found[-1]
        return None

    return await eventually(check)


async def raw(js: Any, topic: str) -> list[Msg]:
    return await stored(js, subjects.mqtt_raw(topic), subjects.STREAM_TELEMETRY)


def fresh() -> str:
    return uuid.uuid4().hex[:8]
