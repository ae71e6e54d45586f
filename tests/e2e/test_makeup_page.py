"""A make-up session is one click from the make-up list (issue 15, item 4), in a real Chromium:
the attendance page's 补训名单 offers 用本场录像安排补学 when the lesson has a recording; the form
opens as the lesson's 补学, playing its recording; saved with an empty roster, the session replays
the lesson and its roster is the lesson's make-up list, at their venues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from server.db.models import Member, RosterEntry, TrainingSession, Venue
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.class_workflow import START, seed_class
from tests.support.recordings import add_recording
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]
WAIT_MS = 15_000


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def test_the_make_up_list_leads_to_a_make_up_session(
    client: Any, world: World, db: Any, chromium: Browser
) -> None:
    seeded = await seed_class(db)  # WF-1 present; WF-2 (main venue) and WF-3 (branch) absent
    await add_recording(db, seeded.session_id, "lesson.webm", START, length=timedelta(hours=3))
    await add_user(db, "op-makeup", "operator", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "op-makeup")
    await page.goto(f"{base}/sessions/{seeded.session_id}/attendance?status=makeup")
    await page.get_by_role("link", name="用本场录像安排补学").click()
    note = page.locator(".makeup-note")
    await expect(note).to_contain_text("播放“乡村振兴第一期”的录像", timeout=WAIT_MS)
    assert await page.input_value("input[name=title]") == "补学：乡村振兴第一期"
    assert await page.input_value("input[name=topic_code]") == "XC-01"
    starts = datetime.now(UTC).astimezone().replace(second=0, microsecond=0) + timedelta(days=1)
    await page.fill("input[name=starts_at]", starts.strftime("%Y-%m-%dT%H:%M"))
    await page.fill("input[name=ends_at]", (starts + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    await page.select_option("select[name=main_venue]", "WF-MAIN")
    await page.check("input[name=branch_venues][value=WF-BR]")
    await page.get_by_role("button", name="安排场次").click()
    await expect(page.locator("h1")).to_have_text("补学：乡村振兴第一期", timeout=WAIT_MS)
    async with db() as session:
        makeup = await session.scalar(
            select(TrainingSession).where(TrainingSession.title == "补学：乡村振兴第一期")
        )
        lesson = await session.scalar(
            select(TrainingSession.id).where(TrainingSession.public_id == seeded.session_id)
        )
        assert makeup is not None and makeup.replay_of_id == lesson
        roster = dict(
            (
                await session.execute(
                    select(Member.member_no, Venue.code)
                    .join(RosterEntry, RosterEntry.member_id == Member.id)
                    .join(Venue, Venue.id == RosterEntry.venue_id)
                    .where(RosterEntry.session_id == makeup.id)
                )
            ).all()
        )
    assert roster == {"WF-2": "WF-MAIN", "WF-3": "WF-BR"}
