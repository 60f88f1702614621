"""What the browser tests share: signing in."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.conftest import API_TOKEN


async def log_in(page: Page, path: str = "/") -> None:
    """Sign in with the admin token and wait for the overview."""
    await page.goto(path)
    await page.get_by_label("Token", exact=True).fill(API_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
