"""The month's results of a subtree are one click from the monthly report (issue 14, item 9),
in a real Chromium: the report page offers every member's results, and the file it downloads
holds them, in words."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.sessions import ALL, held_month
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def test_the_report_page_downloads_the_months_results(
    client: Any, world: World, db: Any, chromium: Browser, tmp_path: Path
) -> None:
    await held_month(client, world)
    await add_user(db, "rev-month", "reviewer", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "rev-month", accept_downloads=True)
    await page.goto(f"{base}/reports/monthly?org=a&month=2026-11")
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="本月考勤明细（CSV）").click()
    download = await waiting.value
    assert download.suggested_filename == "凤阳县-2026-11-出勤情况.csv"
    saved = tmp_path / "month.csv"
    await download.save_as(saved)
    lines = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert lines[0][0] == "党员编号" and [line[0] for line in lines[1:]] == ALL
