"""The dashboard in a real browser: Debian's Chromium (``/usr/bin/chromium``, ``make chromium``)
driven by Playwright, against one stack per module (gateway, processors, projection, API on the
session's nats-server). Playwright downloads nothing; its wheel carries the driver.

Each test gets a fresh browser context (no cookies) and leaves a screenshot of its last state in
``test-artifacts/browser/``. Uncaught page errors and Content-Security-Policy violations fail it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from api import dashboard
from tests.conftest import Stack, running, stack_settings

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
async def site(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    if not dashboard.installed():
        pytest.fail(f"the dashboard's libraries are missing from {dashboard.VENDOR}: run make install")
    settings = stack_settings(nats_url, tmp_path_factory.mktemp("dashboard"))
    async with running(settings, api=True) as stack:
        # A new read model folds every stream of the test session first (hundreds of thousands of
        # messages by now): the pages' 10 s expectations start once it has caught up.
        await stack.projected(timeout=180)
        yield stack


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: make test installs it (make chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        yield found
        await found.close()


@pytest.fixture
async def page(browser: Browser, site: Stack, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=site.api_url, viewport={"width": 1440, "height": 900}, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(TIMEOUT_MS)
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    opened.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        yield opened
    finally:
        await opened.screenshot(path=ARTIFACTS / f"{request.node.name}.png")
        await context.close()
    assert not problems, problems
