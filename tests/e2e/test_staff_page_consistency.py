"""The venue staff page never contradicts itself (issue 14, item 2), in a real Chromium on a real
agent fed by a real server: a row says 在场 as soon as 在场人员 lists the member, a second 签到
warns 已在场, a walk-in or a search with no session says why nothing happened, a 390 px phone
does not scroll sideways, and every time shown is in the server's HETANG_TIMEZONE — not the
browser's zone, not the agent machine's."""

from __future__ import annotations

import re
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.agent_run import AgentRun, start_agent
from tests.support.chromium import launched, needs_chromium
from tests.support.procs import Server, http_json, stop_process, stored_checkins, wait_until

pytestmark = [needs_chromium, pytest.mark.slow]

SERVER_ZONE = "America/New_York"  # HETANG_TIMEZONE: what every time on the page must be in
AGENT_ZONE = "Europe/Berlin"  # the venue PC's own clock zone
BROWSER_ZONE = "Pacific/Auckland"  # the browser's
PHONE = {"width": 390, "height": 844}
NOW, LATER = -timedelta(minutes=10), timedelta(hours=3)  # when a test's session starts


@dataclass
class ZonedServer(Server):
    """`hetang serve` with HETANG_TIMEZONE set."""

    @property
    def env(self) -> dict[str, str]:
        """The server's environment, with its time zone."""
        return {**super().env, "HETANG_TIMEZONE": SERVER_ZONE}


@dataclass(frozen=True)
class Venue:
    """A branch venue with one session and its roster (党员0…党员2; 党员3 is on no roster)."""

    token: str
    session_id: str
    numbers: list[str]


@pytest.fixture
def server(template: tuple[Path, str], tmp_path: Path) -> Iterator[Server]:
    """A running server of this test's own, in SERVER_ZONE."""
    shutil.copytree(template[0], tmp_path / "server")
    running = ZonedServer(tmp_path / "server", template[1]).start()
    yield running
    running.stop()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


def _venue(server: Server, starts_in: timedelta) -> Venue:
    """Members, a main and a branch venue, and a two-hour session starting `starts_in` from
    now, 党员0…党员2 on its roster at the branch."""
    tag = uuid.uuid4().hex[:6]
    org = f"org-{tag}"
    server.api("POST", "organizations", {"code": org, "name": "西泉镇党委", "level": "city"})
    numbers = [f"{tag}-M{n}" for n in range(4)]
    for n, number in enumerate(numbers):
        member = {"member_no": number, "name": f"党员{n}", "org_code": org, "category": "ordinary"}
        server.api("POST", "members", member)
    server.api("POST", "venues", {"code": f"main-{tag}", "name": "主会场", "org_code": org})
    branch = server.api(
        "POST", "venues", {"code": f"b-{tag}", "name": "西泉村分会场", "org_code": org}
    )
    starts = datetime.now(UTC) + starts_in
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十大精神专题培训",
            "topic_code": f"T-{tag}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "credit_hours": 2,
            "main_venue": f"main-{tag}",
            "branch_venues": [f"b-{tag}"],
            "roster": [{"member_no": n, "venue": f"b-{tag}"} for n in numbers[:3]],
        },
    )
    return Venue(branch["token"], session["id"], numbers)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[AgentRun]]:
    """The agents a test starts; stopped at its end."""
    started: list[AgentRun] = []
    yield started
    for agent in started:
        assert agent.stop() == 0


def _agent(
    agents: list[AgentRun], server: Server, venue: Venue, tmp_path: Path, ready: str
) -> AgentRun:
    """The venue's agent on a PC whose clock is in AGENT_ZONE, once its status has `ready`
    (the session of the moment, or the next one) from the server."""
    agent = start_agent(
        tmp_path / "agent.log",
        "--data-dir",
        str(tmp_path / "agent"),
        HETANG_AGENT_SERVER=server.url,
        HETANG_AGENT_TOKEN=venue.token,
        TZ=AGENT_ZONE,
    )
    agents.append(agent)
    wait_until(lambda: _status(agent).get(ready), f"the agent's {ready}", 60)
    return agent


def _status(agent: AgentRun) -> dict[str, Any]:
    status, body = http_json("GET", agent.ui + "/status.json")
    assert status == 200, body
    return dict(body)


def _journal(agent: AgentRun) -> list[tuple[str, str]]:
    """(member_no, kind) of every check-in journaled by the agent."""
    db = sqlite3.connect(agent.log.parent / "agent" / "agent.sqlite3", timeout=30)
    try:
        rows = db.execute(
            "SELECT json_extract(payload, '$.member_no'), json_extract(payload, '$.kind') "
            "FROM outbox WHERE kind = 'checkin' ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    return [(str(a), str(b)) for a, b in rows]


async def _page(browser: Browser, agent: AgentRun, **options: Any) -> Page:
    context = await browser.new_context(timezone_id=BROWSER_ZONE, locale="zh-CN", **options)
    page = await context.new_page()
    await page.goto(agent.ui + "/")
    return page


async def _staff_page(
    server: Server,
    agents: list[AgentRun],
    chromium: Browser,
    tmp_path: Path,
    starts_in: timedelta,
    **options: Any,
) -> tuple[Venue, AgentRun, Page]:
    """A venue whose session starts `starts_in` from now, its agent, and its staff page."""
    venue = _venue(server, starts_in)
    ready = "session" if starts_in <= timedelta(0) else "next_session"
    agent = _agent(agents, server, venue, tmp_path, ready)
    return venue, agent, await _page(chromium, agent, **options)


def _row(page: Page, number: str) -> Any:
    return page.locator("#roster tr", has_text=number)


async def test_a_check_in_shows_in_the_members_row_and_in_the_present_list_at_once(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, agent, page = await _staff_page(server, agents, chromium, tmp_path, NOW)
    number = venue.numbers[1]
    await page.fill("#search", "党员1")
    row = _row(page, number)
    await expect(row.locator(".state")).to_have_text("未在场")
    await expect(page.locator("#roster-note")).to_have_text("共 1 人相符")

    await row.get_by_role("button", name="签到").click()
    await expect(page.locator("#message")).to_contain_text(f"签到成功：党员1（{number}）")
    # No waiting for the next poll: both say so as soon as the message does.
    assert await row.locator(".state").inner_text() == "在场"
    await expect(page.locator("#present li")).to_have_count(1)
    await expect(page.locator("#present li")).to_contain_text(f"党员1（{number}）")
    await expect(page.locator("#present-count")).to_have_text("1 人")

    await row.get_by_role("button", name="签退").click()
    await expect(page.locator("#message")).to_contain_text(f"签退成功：党员1（{number}）")
    assert await row.locator(".state").inner_text() == "未在场"
    await expect(page.locator("#present li")).to_have_count(0)
    assert _journal(agent) == [(number, "in"), (number, "out")]
    wait_until(lambda: len(stored_checkins(server, venue.session_id)) == 2, "the upload")


async def test_a_second_check_in_warns_that_the_member_is_already_present(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, agent, page = await _staff_page(server, agents, chromium, tmp_path, NOW)
    number, walk_in = venue.numbers[0], venue.numbers[3]
    await page.fill("#search", number)
    button = _row(page, number).get_by_role("button", name="签到")
    await button.click()
    message = page.locator("#message")
    await expect(message).to_contain_text(f"签到成功：党员0（{number}）")
    first = re.findall(r"\d\d:\d\d:\d\d", await message.inner_text())
    await button.click()
    await expect(message).to_have_text(
        f"已在场：党员0（{number}） 已于 {first[0]} 签到，本次重复签到不另计"
    )
    await expect(message).to_have_class("warn")
    await expect(_row(page, number).locator(".state")).to_have_text("在场")
    await expect(page.locator("#present li")).to_have_count(1)
    # Someone on no roster, twice through the walk-in box.
    await page.fill("#walk-in-no", walk_in)
    await page.locator("#walk-in").get_by_role("button", name="签到").click()
    await expect(message).to_contain_text(f"{walk_in} 不在本场次名单中：签到已记录")
    await page.fill("#walk-in-no", walk_in)
    await page.locator("#walk-in").get_by_role("button", name="签到").click()
    await expect(message).to_contain_text(f"已在场：{walk_in} 已于")
    await expect(page.locator("#present li")).to_have_count(2)
    # Every scan is journaled and reaches the server, which ignores an `in` while in.
    assert _journal(agent) == [(number, "in"), (number, "in"), (walk_in, "in"), (walk_in, "in")]
    wait_until(lambda: len(stored_checkins(server, venue.session_id)) == 4, "the upload")


async def test_a_walk_in_with_no_session_says_why_and_keeps_the_number(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, agent, page = await _staff_page(server, agents, chromium, tmp_path, LATER)
    await expect(page.locator("#session")).to_contain_text("当前没有可签到的场次")
    walk_in = venue.numbers[3]
    await page.fill("#walk-in-no", walk_in)
    await page.locator("#walk-in").get_by_role("button", name="签到").click()
    message = page.locator("#message")
    await expect(message).to_contain_text("当前没有可签到的场次（下一场：党的二十大精神专题培训，")
    await expect(message).to_contain_text(f"开始前 30 分钟可签到）：{walk_in} 未签到")
    await expect(message).to_have_class("bad")
    await expect(page.locator("#walk-in-no")).to_have_value(walk_in)
    await expect(page.locator("#walk-in-no")).to_be_focused()
    assert _journal(agent) == []


async def test_a_search_with_no_session_says_so(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    *_, page = await _staff_page(server, agents, chromium, tmp_path, LATER)
    await page.fill("#search", "党员")
    note = page.locator("#roster-note")
    await expect(note).to_contain_text("当前没有可签到的场次（下一场：党的二十大精神专题培训，")
    await expect(note).to_contain_text("，名单无法查找。")
    await expect(page.locator("#roster tr")).to_have_count(0)


async def test_the_staff_page_fits_a_390_px_phone(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, _, page = await _staff_page(
        server, agents, chromium, tmp_path, NOW, viewport=PHONE, is_mobile=True, has_touch=True
    )
    # Everything the page can show at once: rows, a message, who is in, a long refused code.
    await page.fill("#search", "党员")
    await expect(page.locator("#roster tr")).to_have_count(3)
    await _row(page, venue.numbers[0]).get_by_role("button", name="签到").click()
    unknown = "NO-SUCH-MEMBER-" + "7" * 48
    await page.fill("#walk-in-no", unknown)
    await page.locator("#walk-in").get_by_role("button", name="签到").click()
    await expect(page.locator("#rejected tr")).to_have_count(1, timeout=30_000)
    await expect(page.locator("#rejected tr")).to_contain_text("查无此人")
    width = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[1] == PHONE["width"] and width[0] <= width[1], width
    await page.screenshot(path=str(tmp_path / "staff-page-390.png"), full_page=True)


def _shown(iso: str) -> str:
    """A time as the page must show it: in SERVER_ZONE, like 2026/12/5 07:05:09."""
    value = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(SERVER_ZONE))
    return f"{value.year}/{value.month}/{value.day} {value:%H:%M:%S}"


async def test_every_time_on_the_page_is_in_the_servers_zone(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, agent, page = await _staff_page(server, agents, chromium, tmp_path, NOW)
    status, schedule = http_json(
        "GET",
        server.url + "/api/v1/agent/schedule",
        headers={"Authorization": f"Bearer {venue.token}"},
    )
    assert status == 200 and schedule["timezone"] == SERVER_ZONE
    session = _status(agent)["session"]
    assert _status(agent)["timezone"] == SERVER_ZONE
    await expect(page.locator("#session")).to_contain_text(
        f"（{_shown(session['starts_at'])} — {_shown(session['ends_at'])}，名单 3 人）"
    )
    number, unknown = venue.numbers[2], "NOBODY-" + uuid.uuid4().hex[:6]
    await page.fill("#search", number)
    await _row(page, number).get_by_role("button", name="签到").click()
    message = page.locator("#message")
    await expect(message).to_contain_text("签到成功")
    [since] = [a["since"] for a in _status(agent)["present"]]
    assert (await message.inner_text()).endswith(_shown(since).split(" ")[1])
    await expect(page.locator("#present li")).to_have_text(f"党员2（{number}）{_shown(since)} 起")
    await page.fill("#walk-in-no", unknown)
    await page.locator("#walk-in").get_by_role("button", name="签到").click()
    await expect(page.locator("#rejected tr")).to_have_count(1, timeout=30_000)
    [refused] = _status(agent)["rejected"]
    await expect(page.locator("#rejected tr td").nth(2)).to_have_text(_shown(refused["at"]))
    last_sync = await page.locator("#last-sync").inner_text()
    assert re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2} \d\d:\d\d:\d\d", last_sync), last_sync
    shown = datetime.strptime(last_sync, "%Y/%m/%d %H:%M:%S").replace(tzinfo=ZoneInfo(SERVER_ZONE))
    assert abs(shown - datetime.now(UTC)) < timedelta(minutes=1), last_sync


async def test_a_click_while_the_agent_is_down_says_nothing_was_recorded(
    server: Server, agents: list[AgentRun], chromium: Browser, tmp_path: Path
) -> None:
    venue, agent, page = await _staff_page(server, agents, chromium, tmp_path, NOW)
    number = venue.numbers[1]
    await page.fill("#search", number)
    button = _row(page, number).get_by_role("button", name="签到")
    await expect(page.locator("#roster-note")).to_have_text("共 1 人相符")
    assert stop_process(agent.process) == 0
    await button.click()
    await expect(page.locator("#message")).to_have_text(
        f"本机签到程序没有响应：{number} 未签到，请稍后重试"
    )
    await expect(page.locator("#message")).to_have_class("bad")
    assert _journal(agent) == []
    assert stored_checkins(server, venue.session_id) == []
