"""Debian's Chromium for browser tests, with the flags WebRTC on loopback needs (never
`playwright install`: the browser comes from apt)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright
from playwright.sync_api import Browser as SyncBrowser
from playwright.sync_api import BrowserContext as SyncContext
from playwright.sync_api import Page as SyncPage
from playwright.sync_api import expect as sync_expect
from playwright.sync_api import sync_playwright

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


ENDING = "确定结束直播吗"  # the console's 结束直播 confirmation


def confirm_ending(page: Page) -> None:
    """Accept the console's 结束直播 confirmation, and only it: any other question (going live
    early, starting the session too) is dismissed, as a person pressing Cancel would."""

    async def answer(dialog: Dialog) -> None:
        if ENDING in dialog.message:
            await dialog.accept()
        else:
            await dialog.dismiss()

    page.on("dialog", answer)


def confirm_ending_sync(page: SyncPage) -> None:
    """confirm_ending for Playwright's sync API."""
    page.on(
        "dialog",
        lambda dialog: dialog.accept() if ENDING in dialog.message else dialog.dismiss(),
    )


@contextmanager
def launched_sync() -> Iterator[SyncBrowser]:
    """launched() for Playwright's sync API (tests that drive whole processes)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def console_sync(
    browser: SyncBrowser, base: str, session_id: str, username: str, password: str
) -> tuple[SyncContext, SyncPage]:
    """A context of its own signed in through the form, on the session's console once it
    updates live and lists a camera; 结束直播 is confirmed, other questions dismissed."""
    context = browser.new_context()
    page = context.new_page()
    confirm_ending_sync(page)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{base}/sessions/{session_id}/console")
    sync_expect(page.locator("#live-status")).to_have_text("实时更新中", timeout=20_000)
    sync_expect(page.locator("#camera option")).not_to_have_count(0, timeout=20_000)
    return context, page
