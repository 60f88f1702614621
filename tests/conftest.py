"""The test session's real parts: one nats-server with JetStream, and an evbus stack per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvloop
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from evbus import bootstrap
from evbus.embedded_nats import EmbeddedNats, embedded_nats
from evbus.settings import Settings
from gateways.ocpp.server import OcppGateway
from processors.csms.app import CsmsProcessor


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Tests run on uvloop, the loop every evbus command runs on (EVBUS_EVENT_LOOP's default)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedNats]:
    """The test session's nats-server: JetStream, and its MQTT listener on a free port."""
    data_dir = tmp_path_factory.mktemp("nats")
    async with embedded_nats(data_dir, client_port=0, mqtt_port=0) as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def mqtt_port(nats_server: EmbeddedNats) -> int:
    """The MQTT listener of the session's nats-server (MQTT 3.1.1; topics become its subjects)."""
    return nats_server.mqtt_port


def stack_settings(nats_url: str, data_dir: Path) -> Settings:
    """Settings of a test stack: free ports, the test admin token, its own data directory."""
    return Settings(
        nats_url=nats_url,
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        api_token=API_TOKEN,
        data_dir=data_dir,
        call_timeout=5,
    )


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> Settings:
    return stack_settings(nats_url, tmp_path)


API_TOKEN = "test-admin-token"


@dataclass
class Stack:
    nc: NATS
    js: JetStreamContext
    gateway: OcppGateway | None
    processor: CsmsProcessor | None
    settings: Settings
    api: bootstrap.Api | None = None

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return f"http://127.0.0.1:{self.api.port}"

    def http(self, token: str | None = API_TOKEN) -> httpx.AsyncClient:
        """A client of this stack's API, with the admin token unless ``token=None``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=10)

    async def projected(self, timeout: float = 10.0) -> None:
        """Wait until the API's projection has applied everything stored so far."""
        assert self.api is not None
        await self.api.services.projection.catch_up(timeout)

    def url(self, station: str, prefix: str = "/ocpp/") -> str:
        assert self.gateway is not None
        return f"ws://127.0.0.1:{self.gateway.port}{prefix}{station}"


@contextlib.asynccontextmanager
async def running(
    settings: Settings, gateway: bool = True, processor: bool = True, api: bool = False
) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as stack:
        b = await stack.enter_async_context(bootstrap.bus(settings, embedded=False))
        csms = await stack.enter_async_context(bootstrap.processors(b, settings)) if processor else None
        gw = await stack.enter_async_context(bootstrap.gateway(b, settings)) if gateway else None
        served = await stack.enter_async_context(bootstrap.api(b, settings)) if api else None
        yield Stack(b.nc, b.nc.jetstream(), gw, csms, settings, served)


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running(settings) as s:
        yield s


@pytest.fixture
async def full_stack(settings: Settings) -> AsyncIterator[Stack]:
    """Gateway, processor, projection and API: what `evbus up` runs."""
    async with running(settings, api=True) as s:
        yield s


@pytest.fixture
def station() -> str:
    """A station id no other test uses, so each test reads only its own frames."""
    return f"CP-{uuid.uuid4().hex[:10]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "nats_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nats)
