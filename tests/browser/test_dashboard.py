"""The dashboard as a user sees it (issue 7): sign in, watch a station connect and its frames arrive
live, reset it from its page and read its answer, switch to German. Real ``ocpp``-library stations
connect to the module's stack; the page learns of them only through the API and its streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import GenericError
from ocpp.v16 import call as call16
from playwright.async_api import Page, expect

from api import dashboard
from tests.browser.support import log_in
from tests.conftest import API_TOKEN, Stack
from tests.stations import Station16
from tests.support import charge_point, eventually, present

pytestmark = pytest.mark.nats


@contextlib.asynccontextmanager
async def connected(site: Stack, station: str) -> AsyncIterator[Any]:
    """A booted 1.6 station that answers every command, connected to the stack's gateway and in
    the API's read model."""
    async with charge_point(site.url(station), station, "ocpp1.6", Station16) as (cp, _):
        await cp.boot()
        await eventually(lambda: present(site.js, station))
        await site.projected()
        yield cp


async def test_login_shows_the_overview_and_sign_out_returns_to_it(page: Page) -> None:
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Sign in to evbus")).to_be_visible()

    await page.get_by_label("Token", exact=True).fill("not-the-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Invalid credentials.")

    await page.get_by_label("Token", exact=True).fill(API_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_text("Connected stations")).to_be_visible()
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "evbus_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"

    await page.reload()  # the session cookie holds
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator(".live.open")).to_be_visible()  # the live streams are open

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in to evbus")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in to evbus")).to_be_visible()


async def test_a_station_connects_and_its_frames_appear_live(page: Page, site: Stack, station: str) -> None:
    await log_in(page)
    await page.get_by_role("link", name="Connections", exact=True).click()
    await expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    await expect(page.locator(".live.open")).to_be_visible()
    await page.evaluate("window.evbusNotReloaded = true")

    async with connected(site, station) as cp:
        row = page.get_by_role("row").filter(has_text=station)
        await expect(row).to_contain_text("online")
        await expect(row).to_contain_text("ocpp1.6")

        await page.get_by_role("link", name="Message log", exact=True).click()
        await page.get_by_label("Station", exact=True).fill(station)  # the session's other traffic aside
        frames = page.locator(".log-row").filter(has_text=station)
        await expect(frames.filter(has_text="BootNotification").first).to_be_visible()

        await cp.call(call16.Heartbeat())
        heartbeat = frames.filter(has_text="Heartbeat")
        await expect(heartbeat.first).to_be_visible()
        await expect(heartbeat).to_have_count(2)  # the CALL and our CALLRESULT

        await heartbeat.filter(has_text="CALLRESULT").click()  # the payload viewer pairs it with its CALL
        detail = page.get_by_role("complementary", name="Payload")
        await expect(detail).to_contain_text("Request")
        await expect(detail).to_contain_text("currentTime")

    assert await page.evaluate("window.evbusNotReloaded") is True


async def test_reset_from_the_station_page_shows_the_answer(page: Page, site: Stack, station: str) -> None:
    async with connected(site, station) as cp:
        await log_in(page)
        await page.goto(f"/#/stations/{station}")
        await expect(page.get_by_role("heading", name=f"Station {station}")).to_be_visible()
        await expect(page.get_by_text("evbus-tests / Answerer")).to_be_visible()

        await page.get_by_role("button", name="Soft reset").click()
        answer = page.locator("details.answer").first
        await expect(answer).to_contain_text("Soft reset")
        await expect(answer).to_contain_text("Accepted")
        assert cp.seen("Reset") == [{"type": "Soft"}]

        cp.failing["Reset"] = GenericError("no reset today")  # the station answers CALLERROR
        hard = page.get_by_role("button", name="Hard reset")
        await hard.click()
        await page.get_by_role("button", name="Click again to confirm").click()
        answer = page.locator("details.answer").first
        await expect(answer).to_contain_text("Hard reset")
        await expect(answer).to_contain_text("HTTP 502")
        await expect(answer).to_contain_text("CALLERROR GenericError")


async def test_language_switch_is_kept_in_a_cookie(page: Page) -> None:
    await log_in(page)
    await page.get_by_role("button", name="Deutsch").click()
    await expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    await expect(page.get_by_role("link", name="Verbindungen", exact=True)).to_be_visible()
    await expect(page.get_by_text("Verbundene Stationen")).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "evbus_lang"]
    assert cookie["value"] == "de"

    await page.reload()
    await expect(page.get_by_role("heading", name="Übersicht")).to_be_visible()
    await page.get_by_role("link", name="Nachrichtenprotokoll", exact=True).click()
    await expect(page.get_by_role("heading", name="Nachrichtenprotokoll")).to_be_visible()
    await expect(page.get_by_role("button", name="Anhalten")).to_be_visible()


async def test_the_sessions_csv_downloads_with_the_login_cookie(page: Page) -> None:
    await log_in(page)
    await page.get_by_role("link", name="Sessions", exact=True).click()
    await expect(page.get_by_role("heading", name="Charging sessions")).to_be_visible()
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Export CSV").click()
    download = await started.value
    assert download.suggested_filename == "transactions.csv"
    saved = await download.path()
    header = (await asyncio.to_thread(saved.read_text)).splitlines()[0]
    assert header.startswith("transactionId,identity,")


async def test_the_page_and_its_files_need_no_login_and_carry_a_strict_csp(site: Stack) -> None:
    async with site.http(token=None) as anonymous:
        page = await anonymous.get("/")
        script = await anonymous.get("/static/app.js")
        library = await anonymous.get("/static/vendor/htm-preact.js")
        assert (await anonymous.get("/api/overview")).status_code == 401  # the data is not open
        assert (await anonymous.get("/static/../dashboard.py")).status_code == 404
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    for answer in (page, script, library):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe" not in csp  # no inline script, no eval
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert script.headers["content-type"].startswith("text/javascript")


async def test_without_make_install_the_page_says_what_to_run(
    site: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dashboard, "VENDOR", tmp_path)
    async with site.http(token=None) as anonymous:
        page = await anonymous.get("/")
    assert page.status_code == 503
    assert "make install" in page.text
