"""A branch venue's staff are no longer cut off (issue 14, item 3), in a real Chromium: their
start page lists what is coming at their venues, 场次 is in the menu, and a session shows them
their venues' roster lines and, once finalized, their venues' attendance only, read-only; a
reviewer's start page lists what waits for them."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.browser import Browser as HttpBrowser
from tests.support.browser import add_user, give_password
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.sessions import advance, between_m_and_b, live_session, schedule_worked_example
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]
Db = async_sessionmaker[AsyncSession]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


def _base(client: Any) -> str:
    return str(client.make_url("/")).rstrip("/")


async def test_venue_staff_see_their_venues_part_of_a_session(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    # B2 belongs to branch a1a; B1 to its committee a1 and M to the county: a1a's staff have B2.
    session_id, _ = await schedule_worked_example(client, world)
    await add_user(db, "staff-b2", "venue_staff", "a1a", "西泉村会场管理员")
    page = await signed_in_page(chromium, _base(client), "staff-b2")
    await page.get_by_role("navigation", name="主菜单").get_by_role("link", name="场次").click()
    await expect(page.locator("h1")).to_have_text("培训场次")
    await page.get_by_role("link", name="年轻干部淬炼成钢").click()
    roster = page.locator("#roster")
    await expect(roster.locator(".meta")).to_have_text("共 5 人，其中 1 人分配到您的会场")
    await expect(roster.locator("tbody tr")).to_have_count(1)
    await expect(roster.locator("tbody tr")).to_contain_text("党员E")
    await expect(roster.locator("tbody a")).to_have_count(0)  # no dead link to member pages
    await expect(page.get_by_role("button", name="开始培训")).to_have_count(0)
    await expect(page.get_by_role("link", name="编辑")).to_have_count(0)

    await advance(client, world, session_id, "start", "end", "finalize")
    await page.reload()
    await page.get_by_role("link", name="出勤情况").click()
    await expect(page.locator("table.attendance tbody tr")).to_have_count(1)
    await expect(page.locator("table.attendance tbody tr")).to_contain_text("党员E")
    text = await page.locator("main").inner_text()
    assert "党员A" not in text and "会场B1" not in text and "会场B2" in text, text
    # The export is the same cut.
    async with HttpBrowser(client) as staff:
        await give_password(db, "staff-b2")
        await staff.signed_in("staff-b2")
        async with staff.request("GET", f"/sessions/{session_id}/attendance.csv") as answer:
            assert answer.status == 200
            rows = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["E"], rows
    # Another county's staff do not see the session at all.
    async with HttpBrowser(client) as other:
        await give_password(db, "venue-staff-b")
        await other.signed_in("venue-staff-b")
        async with other.request("GET", f"/sessions/{session_id}") as answer:
            assert answer.status == 404


async def test_every_role_s_start_page_shows_what_is_next(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    live_id, _ = await live_session(client, world)  # at venue B of a1, running now
    yesterday = datetime.now(UTC) - timedelta(days=1)
    past_id = await between_m_and_b(client, world, "年轻干部淬炼成钢", yesterday)
    await advance(client, world, past_id, "start", "end")
    await advance(client, world, live_id, "start")
    await give_password(db, "venue-staff-a", "venue-staff-b", "reviewer-a")

    staff = await signed_in_page(chromium, _base(client), "venue-staff-a")
    heading = staff.get_by_role("heading", name="您的会场即将举行的培训")
    coming = staff.locator("section", has=heading)
    await expect(coming.locator("li")).to_have_count(1)
    await expect(coming.locator("li")).to_contain_text("进行中")
    await coming.locator("li a").click()
    await expect(staff).to_have_url(f"{_base(client)}/sessions/{live_id}")

    elsewhere = await signed_in_page(chromium, _base(client), "venue-staff-b")
    await expect(elsewhere.get_by_text("暂无即将举行的培训。")).to_be_visible()

    reviewer = await signed_in_page(chromium, _base(client), "reviewer-a")
    waiting = reviewer.locator("section", has=reviewer.get_by_role("heading", name="待您处理"))
    await expect(waiting).to_contain_text("已结束，待汇总考勤")
    await expect(waiting.get_by_role("link", name="年轻干部淬炼成钢")).to_be_visible()
    await advance(client, world, past_id, "finalize")
    await reviewer.reload()
    text = await waiting.inner_text()
    ended, finalized = text.split("已汇总，待审核通过")
    assert "年轻干部淬炼成钢" not in ended and "年轻干部淬炼成钢" in finalized.split("培训计划")[0]
