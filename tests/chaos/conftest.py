"""Fault tests: each runs its own nats-server and evbus roles as real processes, and kills some.

They are marked ``chaos`` (and ``nats``: they need real servers), run by ``make chaos`` and left out
of ``make test``. Each prints one ``chaos[…]: sent=… answered=… stored=… lost=0 duplicates=0`` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import nats
import pytest
from nats.aio.client import Client as NATS

from tests.chaos.processes import EvbusRole, NatsServer, role_env

HERE: Final = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.nats)


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Roles:
    """evbus roles of one test, all on its nats-server, each with its own data directory and log."""

    def __init__(self, server: NatsServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.running: list[EvbusRole] = []

    def env(self, name: str, **extra: object) -> dict[str, str]:
        return role_env(self.server.url, self.root / name, **extra)

    async def start(self, role: str, name: str | None = None, data: str | None = None, **extra: object) -> EvbusRole:
        """``evbus {role}`` named ``name`` (its log; default: the role), its data directory ``data``
        (default: the name; a restarted process gets the dead one's to resume from)."""
        name = name or role
        started = await EvbusRole.start(role, self.env(data or name, **extra), self.root / f"{name}.log")
        self.running.append(started)
        return started

    async def stop_all(self) -> None:
        await asyncio.gather(*(role.stop() for role in self.running))


@pytest.fixture
async def roles(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Roles]:
    started = Roles(nats_server, tmp_path / "evbus")
    try:
        yield started
    finally:
        await started.stop_all()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[NATS]:
    """The test's own NATS connection (it rides out a server restart)."""
    nc = await nats.connect(nats_server.url, name="chaos-test", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        yield nc
    finally:
        await nc.close()
