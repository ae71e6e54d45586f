"""Debian's Chromium for browser tests, with the flags WebRTC on loopback needs (never
`playwright install`: the browser comes from apt)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.browser import PASSWORD

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not on PATH")


@asynccontextmanager
async def launched() -> AsyncIterator[Browser]:
    """One Debian Chromium driven by Playwright, closed after use."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in_page(browser: Browser, base: str, username: str, **options: Any) -> Page:
    """A page of its own (cookies too) signed in through the form like a person, with PASSWORD;
    `options` go to the browser context (a phone's viewport, a locale)."""
    context = await browser.new_context(**options)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    return page
