"""The Devices view as a user sees it (docs/adr/0010-mqtt-gateway.md): an evcc loadpoint, a real
MQTT client of the session's nats-server MQTT listener, publishes through a real MQTT gateway; the
page lists it with its power, shows a new power value live, lists the settings the API lists for
it with the values it shows (live), and writes its charge mode, which the fake loadpoint shows back
as evcc does; the loadpoint's charging session is among the sessions, marked
MQTT. The page learns everything through the API and its streams."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Page, Request, expect

from tests.api.test_mqtt import charger
from tests.browser.conftest import ARTIFACTS
from tests.browser.support import log_in
from tests.conftest import Stack
from tests.gateways.mqtt.support import mqtt_gateway, true
from tests.support import eventually

pytestmark = pytest.mark.nats


async def test_a_device_shows_up_updates_live_and_takes_a_new_mode(page: Page, site: Stack, mqtt_port: int) -> None:
    lp = str(uuid.uuid4().int % 10**6 + 100)  # TELEMETRY is the session's: a loadpoint of this test alone
    device_id, base = f"evcc.lp{lp}", f"evcc/loadpoints/{lp}"
    state = [
        (f"{base}/title", b"Garage"),
        (f"{base}/mode", b"pv"),
        (f"{base}/connected", b"true"),
        (f"{base}/charging", b"true"),
        (f"{base}/chargePower", b"3700"),
        *((f"{base}/chargeCurrents/l{n}", b"5.4") for n in (1, 2, 3)),
        *((f"{base}/chargeVoltages/l{n}", b"230") for n in (1, 2, 3)),
        (f"{base}/vehicleSoc", b"54"),
        (f"{base}/sessionEnergy", b"1250"),
    ]
    settings = site.settings.with_(mqtt_url=f"mqtt://127.0.0.1:{mqtt_port}")
    echo = {f"{base}/mode/set": f"{base}/mode"}  # evcc publishes a new mode on its value topic
    async with mqtt_gateway(settings, f"{base}/#") as (gw, _), charger(mqtt_port, state, echo) as lp_device:
        await log_in(page)
        listed: list[str] = []
        page.on("request", lambda r: _list_request(r, listed))
        await page.get_by_role("link", name="Devices", exact=True).click()
        await expect(page.get_by_role("heading", name="Devices")).to_be_visible()
        status = page.get_by_role("status", name="MQTT")
        await expect(status).to_contain_text(gw.id)
        await expect(status).to_contain_text("connected")
        await expect(status).to_contain_text("msg/s")

        row = page.get_by_role("row").filter(has_text=device_id)
        await expect(row).to_contain_text("Garage")
        await expect(row).to_contain_text("3.70 kW")
        await expect(row).to_contain_text("charging")
        await expect(row).to_contain_text("54 %")
        await expect(row).to_contain_text("online")

        await expect(page.locator(".live.open")).to_be_visible()  # the readings stream too
        await eventually(lambda: true(len(listed) == 2))  # on opening, and again once its stream is open
        await lp_device.client.publish(f"{base}/chargePower", b"7400", qos=1)
        await expect(row).to_contain_text("7.40 kW")
        assert len(listed) == 2, listed  # it came with the readings stream, not a reload of the list
        await page.screenshot(path=ARTIFACTS / "test_devices_list.png")

        await site.projected()  # its charging session is in the read model
        await row.click()
        await expect(page.get_by_role("heading", name="Device Garage")).to_be_visible()
        await expect(page.locator("[data-field=powerW] dd")).to_have_text("7.40 kW")
        await expect(page.get_by_role("table", name="Per phase")).to_contain_text("5.4 A")
        await expect(page.locator(".chart .uplot")).to_be_visible()
        await expect(page.get_by_role("table", name="Charging sessions")).to_contain_text("active")

        settings = page.get_by_role("table", name="Settings")  # listed by GET /api/devices/{id}/settings
        await expect(settings.locator("tbody tr")).to_have_count(6)  # phases, an alias of phasesConfigured: not twice
        energy = settings.locator("tr[data-setting=limitEnergy]")
        await expect(energy.locator("td.shown")).to_have_text("\u2013")  # not shown yet
        await lp_device.client.publish(f"{base}/limitEnergy", b"12.5", qos=1)  # kWh; normalised to Wh
        await expect(energy.locator("td.shown")).to_have_text("12.5 kWh")  # live, scaled back
        mode = page.get_by_role("row").filter(has_text="Charge mode")
        await expect(mode.locator("td.shown")).to_have_text("Solar")
        await mode.get_by_role("combobox").select_option("now")
        await mode.get_by_role("button", name="Set").click()
        answer = page.locator("details.answer").first
        await expect(answer).to_contain_text("Charge mode: Fast")
        await expect(answer).to_contain_text("applied")
        await expect(answer).to_contain_text("shown by the device after")
        await expect(mode.locator("td.shown")).to_have_text("Fast")  # the echo, live
        assert lp_device.commands[0][:2] == (f"{base}/mode/set", b"now")
        await page.set_viewport_size({"width": 1440, "height": 1500})  # the chart and sessions too
        await page.screenshot(path=ARTIFACTS / "test_devices_device.png")

        await page.get_by_role("link", name="Sessions", exact=True).click()
        await page.get_by_label("Source").select_option("mqtt")
        session = page.get_by_role("row").filter(has_text=f"mqtt:{device_id}:1")
        await expect(session).to_contain_text("MQTT")
        await expect(session.get_by_role("link", name=device_id)).to_have_attribute("href", f"#/devices/{device_id}")


def _list_request(request: Request, seen: list[str]) -> None:
    if "/api/devices?" in request.url:
        seen.append(request.url)
