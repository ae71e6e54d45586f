"""Roster files past the old 1 MiB limit on the session form (issue 14, item 8): read from the
temporary file aiohttp spooled, all lines or none, a bad line named with its number, its column
in Chinese and its value, UTF-16 and Big5 named with what to do, and never a member of another
county."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from server.db.models import Member, RosterEntry, TrainingSession
from server.db.session import read_session
from server.http.body_limit import MAX_BODY
from tests.support.browser import Browser, add_user
from tests.support.databases import Db
from tests.support.many_members import import_members
from tests.support.session_form import post_form, session_form, setup_city
from tests.support.world import World

LINES = 24_000  # about 1.1 MB of roster: past the 1 MiB every other form keeps
NUMBER = "ROSTER-MEMBER-NUMBER-OF-A-LARGE-COUNTY-{:06d}"


def _roster(last: str | None = None) -> str:
    lines = [f"{NUMBER.format(i)},B1\n" for i in range(LINES)]
    if last is not None:
        lines[-1] = last
    return "党员编号,会场代码\n" + "".join(lines)


async def _stored(db: Db) -> tuple[int, int]:
    async with read_session(db) as session:
        sessions = await session.scalar(select(func.count()).select_from(TrainingSession))
        entries = await session.scalar(select(func.count()).select_from(RosterEntry))
    return int(sessions or 0), int(entries or 0)


def _file_form(csrf: str, roster: str | bytes) -> Any:
    """The session form with nothing on the roster but the file."""
    form = session_form(csrf, roster_lines="", org_0="", org_venue_0="", roster_file=None)
    data = roster.encode() if isinstance(roster, str) else roster
    form.add_field("roster_file", io.BytesIO(data), filename="名单.csv", content_type="text/csv")
    return form


@pytest.fixture
async def planner(client: Any, db: Db, world: World) -> AsyncIterator[tuple[Browser, str]]:
    """County a's administrator signed in, with the session pages' venues and members."""
    await setup_city(client, world)
    await add_user(db, "planner", "admin", "a")
    async with Browser(client) as browser:
        yield browser, await browser.signed_in("planner")


async def test_a_roster_file_past_1_mib_is_scheduled_whole(
    planner: tuple[Browser, str], db: Db
) -> None:
    browser, csrf = planner
    await import_members(db, (NUMBER.format(i) for i in range(LINES)))
    assert len(_roster().encode()) > MAX_BODY
    location, _ = await post_form(browser, "/sessions", _file_form(csrf, _roster()))
    assert f"roster={LINES}" in location
    assert await _stored(db) == (1, LINES)


async def test_one_bad_line_of_a_large_roster_file_stores_nothing(
    planner: tuple[Browser, str], db: Db
) -> None:
    browser, csrf = planner
    await import_members(db, (NUMBER.format(i) for i in range(LINES)))
    bad = _roster(last=f"{NUMBER.format(LINES - 1)},会场？\n")
    _, html = await post_form(browser, "/sessions", _file_form(csrf, bad), status=422)
    assert f"第 {LINES + 1} 行：部分内容有误： 会场代码: 不是有效的会场代码 (“会场？”)" in html
    utf16 = _roster().encode("utf-16")
    _, html = await post_form(browser, "/sessions", _file_form(csrf, utf16), status=422)
    assert "文件是 UTF-16 文本（Excel 的“Unicode 文本”），不是 UTF-8" in html
    big5 = "黨員編號,會場代碼\nA,B1\n".encode("big5")
    _, html = await post_form(browser, "/sessions", _file_form(csrf, big5), status=422)
    assert "文件看起来是 Big5（繁体中文）编码" in html
    assert await _stored(db) == (0, 0)


async def test_a_roster_file_never_reaches_another_county(
    planner: tuple[Browser, str], db: Db
) -> None:
    browser, csrf = planner
    outside = "党员编号,会场代码\nA,B1\nX1,B1\n"
    _, html = await post_form(browser, "/sessions", _file_form(csrf, outside), status=422)
    assert "名单中有 1 名党员不存在：X1" in html
    async with read_session(db) as session:
        name = await session.scalar(select(Member.name).where(Member.member_no == "X1"))
    assert name is not None and name not in html  # the member exists, and is not named
    assert await _stored(db) == (0, 0)
