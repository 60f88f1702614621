"""Fixtures of the API tests: ``api`` is an authenticated client of the module's own ``site`` stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack


@pytest.fixture
async def api(site: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with site.http() as client:
        yield client
