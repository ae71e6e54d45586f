"""Long lists a clerk can read (issue 14, item 9), in a real Chromium: a session's roster and its
attendance table come a hundred members to a page (filters kept from page to page), and the
session list is sorted as it says — coming up soonest first, then past ones latest first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.sessions import advance, between_m_and_b, live_session
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]
MEMBERS = 130


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def test_a_large_roster_and_its_attendance_come_in_pages(
    client: Any, world: World, db: Any, chromium: Browser
) -> None:
    await live_session(client, world)  # venues M and B
    admin = world.auth("admin", "a")
    for n in range(MEMBERS):
        answer = await client.post(
            "/api/v1/members",
            headers=admin,
            json={
                "member_no": f"P{n:04d}",
                "name": f"党员{n}",
                "org_code": "a1",
                "category": "ordinary",
            },
        )
        assert answer.status == 201, await answer.text()
    session_id = await between_m_and_b(
        client,
        world,
        "基层党组织书记轮训",
        datetime.now(UTC) - timedelta(days=2),
        "T-LONG",
        roster=[(f"P{n:04d}", "B") for n in range(MEMBERS)],
    )
    await add_user(db, "rev-long", "reviewer", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "rev-long")

    await page.goto(f"{base}/sessions/{session_id}")
    roster = page.locator("#roster")
    await expect(roster.locator("tbody tr")).to_have_count(100)
    await expect(roster.locator(".pager .current")).to_have_text("第 1 页，共 2 页")
    await roster.get_by_role("link", name="下一页 →").click()
    await expect(roster.locator("tbody tr")).to_have_count(30)
    await expect(roster.locator("tbody tr").first).to_contain_text("P0100")

    await advance(client, world, session_id, "start", "end", "finalize")
    await page.goto(f"{base}/sessions/{session_id}/attendance?status=absent")
    table = page.locator("#members")
    await expect(table.locator(".meta")).to_have_text("共 130 人中的 130 人")
    await expect(table.locator("tbody tr")).to_have_count(100)
    await table.get_by_role("link", name="下一页 →").click()
    assert "status=absent" in page.url and "page=2" in page.url
    await expect(table.locator("tbody tr")).to_have_count(30)
    await expect(table.locator(".pager .current")).to_have_text("第 2 页，共 2 页")
    height = await page.evaluate("document.documentElement.scrollHeight")
    assert height < 12_000, height  # not a 20,000 px page


async def test_the_session_list_is_sorted_as_it_says(
    client: Any, world: World, db: Any, chromium: Browser
) -> None:
    live_id, _ = await live_session(client, world)
    now = datetime.now(UTC)
    later = await between_m_and_b(client, world, "明天的党课", now + timedelta(days=1))
    soon = await between_m_and_b(client, world, "三小时后的党课", now + timedelta(hours=3))
    old = await between_m_and_b(client, world, "上个月的党课", now - timedelta(days=30))
    recent = await between_m_and_b(client, world, "昨天的党课", now - timedelta(days=1))
    for past in (old, recent):
        await advance(client, world, past, "start", "end")
    await add_user(db, "op-list", "operator", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "op-list")
    await page.goto(f"{base}/sessions")
    await expect(page.locator(".lead")).to_contain_text("即将举行的按时间先后排列")
    coming = page.locator("section", has=page.get_by_role("heading", name="即将举行和正在进行"))
    past = page.locator("section", has=page.get_by_role("heading", name="已举行的培训"))
    links = coming.locator("tbody tr td:first-child a")
    assert [await link.get_attribute("href") for link in await links.all()] == [
        f"/sessions/{live_id}",
        f"/sessions/{soon}",
        f"/sessions/{later}",
    ]
    links = past.locator("tbody tr td:first-child a")
    assert [await link.get_attribute("href") for link in await links.all()] == [
        f"/sessions/{recent}",
        f"/sessions/{old}",
    ]
