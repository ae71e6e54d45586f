"""Chinese pages and official documents name things (issue 14, item 6), in a real Chromium: the
session page names its organizer, the opening notice names the class's courses and never a topic
code, a certificate number carries no organization code, and the attendance file a clerk
downloads names organizations and venues where it once showed their codes."""

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
from tests.support.class_workflow import CLASS_PAGE, seed_class
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]
CODES = ("XC-01", "JC-02", "WF-MAIN", "WF-BR", "a1a")


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def test_pages_and_documents_show_names_not_codes(
    client: Any, world: World, db: Any, chromium: Browser, tmp_path: Path
) -> None:
    seeded = await seed_class(db)
    await add_user(db, "clerk-names", "reviewer", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "clerk-names", accept_downloads=True)

    await page.goto(f"{base}/sessions/{seeded.session_id}")
    organizer = page.locator("dt", has_text="主办组织").locator("xpath=following-sibling::dd[1]")
    assert (await organizer.inner_text()).strip() == "西泉镇党委"

    await page.goto(f"{base}{CLASS_PAGE}/print/opening_notice")
    notice = await page.locator("article.sheet").inner_text()
    assert "安排“乡村振兴第一期”等课程" in notice
    assert not [code for code in CODES if code in notice]

    await page.goto(f"{base}{CLASS_PAGE}/print/certificate")
    numbers = await page.locator(".certificate p", has_text="证书编号").all_inner_texts()
    assert numbers == ["证书编号：2026C01-WF-1"]  # year, class and member; no "a1-"

    await page.goto(f"{base}/sessions/{seeded.session_id}/attendance")
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="下载 CSV").click()
    saved = tmp_path / "attendance.csv"
    await (await waiting.value).save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    by_member = {row["党员编号"]: row for row in rows}
    assert by_member["WF-3"]["所在组织"] == "西泉镇党委"
    assert by_member["WF-3"]["指定会场"] == "西泉村分会场"
    assert by_member["WF-1"]["签到会场"] == "西泉镇党校主会场"
