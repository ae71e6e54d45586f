"""Going live is one clear path, and what cannot be undone asks first (issue 14, item 4), in a
real Chromium with a fake camera: the session page leads to 开始直播; going live more than 30
minutes early asks; the broadcast of a session not yet started offers to start it; 结束直播,
ending a session early, approving and reopening say what follows before they happen."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import TrainingSession
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.sessions import between_m_and_b, live_session
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only]
Db = async_sessionmaker[AsyncSession]
WAIT_MS = 15_000


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


class Questions:
    """The page's confirm() questions, answered from a list (then dismissed, like Cancel)."""

    def __init__(self, page: Page) -> None:
        self.asked: list[str] = []
        self.answers: list[bool] = []
        page.on("dialog", self._answer)

    async def _answer(self, dialog: Dialog) -> None:
        self.asked.append(dialog.message)
        if self.answers and self.answers.pop(0):
            await dialog.accept()
        else:
            await dialog.dismiss()


async def until(check: Callable[[], Any], want: Any) -> None:
    """Wait until check() (awaited when it is a coroutine) answers want."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got == want:
            return
        assert asyncio.get_running_loop().time() < deadline, (got, want)
        await asyncio.sleep(0.1)


async def _state(db: Db, session_id: str) -> str:
    async with db() as session:
        state = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == session_id)
        )
    return str(state)


async def _broadcast_on(client: Any, world: World, session_id: str) -> bool:
    answer = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("reviewer", "a")
    )
    return bool((await answer.json())["broadcast"]["on"])


async def test_going_live_early_asks_and_offers_to_start_the_session(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    await live_session(client, world)  # venues M and B
    starts_at = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    session_id = await between_m_and_b(client, world, "党史学习教育专题党课", starts_at)
    await add_user(db, "op-live", "operator", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "op-live")
    questions = Questions(page)
    await page.goto(f"{base}/sessions/{session_id}")
    # The primary button leads to the broadcast; 开始培训 is there, but not the first thing.
    go_live = page.locator("#go-live")
    await expect(go_live).to_have_text("开始直播…")
    assert await page.get_by_role("button", name="开始培训").get_attribute("class") == "secondary"
    await go_live.click()
    await expect(page).to_have_url(re.compile(r"/console#broadcast$"))
    await expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)

    start = page.get_by_role("button", name="开始直播")
    await start.click()  # two hours early: asked, and Cancel keeps it off the air
    await until(lambda: len(questions.asked), 1)
    assert re.search(r"本场培训 \d\d:\d\d 开始，距现在还有 1[12]\d 分钟", questions.asked[0])
    assert not await _broadcast_on(client, world, session_id)

    questions.answers = [True, True]  # go live anyway, and start the session too
    await start.click()
    await until(lambda: len(questions.asked), 3)
    assert "是否同时开始培训" in questions.asked[2]
    await until(lambda: _state(db, session_id), "live")
    assert await _broadcast_on(client, world, session_id)

    end = page.get_by_role("button", name="结束直播")
    await end.click()  # asked; Cancel keeps the broadcast on
    await until(lambda: len(questions.asked), 4)
    assert "各分会场将立即失去画面和声音" in questions.asked[3]
    assert await _broadcast_on(client, world, session_id)
    questions.answers = [True]
    await end.click()
    await expect(page.locator("#broadcast-status")).to_have_text("直播已结束。", timeout=WAIT_MS)
    assert not await _broadcast_on(client, world, session_id)


async def _confirm_box(page: Page) -> Any:
    box = page.get_by_role("alertdialog")
    await expect(box).to_be_visible()
    return box


async def test_ending_early_approving_and_reopening_say_what_follows(
    client: Any, world: World, db: Db, chromium: Browser
) -> None:
    session_id, _ = await live_session(client, world)  # ends in two hours
    await add_user(db, "op-end", "operator", "a")
    await add_user(db, "rev-end", "reviewer", "a")
    await add_user(db, "adm-end", "admin", "a")
    base = str(client.make_url("/")).rstrip("/")
    operator = await signed_in_page(chromium, base, "op-end")
    await operator.goto(f"{base}/sessions/{session_id}")
    await operator.get_by_role("button", name="开始培训").click()
    await operator.get_by_role("button", name="结束培训").click()
    box = await _confirm_box(operator)
    await expect(box).to_contain_text("请确认：提前结束培训")
    await expect(box).to_contain_text(re.compile(r"现在结束将提前 1[01]\d 分钟"))
    assert await _state(db, session_id) == "live"  # nothing happened yet
    await box.get_by_role("link", name="取消").click()
    await expect(operator.get_by_role("alertdialog")).to_have_count(0)
    assert await _state(db, session_id) == "live"
    await operator.get_by_role("button", name="结束培训").click()
    await (await _confirm_box(operator)).get_by_role("button", name="提前结束培训").click()
    await until(lambda: _state(db, session_id), "ended")

    reviewer = await signed_in_page(chromium, base, "rev-end")
    await reviewer.goto(f"{base}/sessions/{session_id}")
    await reviewer.get_by_role("button", name="汇总考勤").click()
    await reviewer.goto(f"{base}/sessions/{session_id}")
    await reviewer.get_by_role("button", name="审核通过").click()
    box = await _confirm_box(reviewer)
    await expect(box).to_contain_text("不能再重新汇总；只有管理员可以重新开放")
    assert await _state(db, session_id) == "finalized"
    await box.get_by_role("button", name="审核通过并锁定记录").click()
    await until(lambda: _state(db, session_id), "approved")

    admin = await signed_in_page(chromium, base, "adm-end")
    await admin.goto(f"{base}/sessions/{session_id}")
    await admin.get_by_role("button", name="重新开放").click()
    box = await _confirm_box(admin)
    await expect(box).to_contain_text("此次重新开放会记入审计日志")
    assert await _state(db, session_id) == "approved"
    await box.get_by_role("button", name="重新开放并解除锁定").click()
    await until(lambda: _state(db, session_id), "finalized")
