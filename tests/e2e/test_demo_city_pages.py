"""The demo as `make run` gives it (issue 14, item 10), in Debian's Chromium: the demo city is
built by the real CLI, the server says where it listens, and a reviewer signed in with the
printed demo login sees today's session starting within minutes on the start page, a monthly
report with a city's figures (most members trained, some below the requirement) and a
committee's archive cabinet filled by a year of classes."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect

from server.demo import today as demo_today
from server.domain.reports import month_of
from server.services.clock import utcnow
from tests.support.chromium import launched, needs_chromium
from tests.support.procs import BIN, SECRET, clean_env, free_port, stop_process

pytestmark = [needs_chromium, pytest.mark.slow]
WAIT_MS = 15_000
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Demo:
    """The running demo: its URL, what `hetang demo` printed, and the logins it named."""

    url: str
    printed: str
    passwords: dict[str, str]
    env: dict[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`hetang migrate`, `hetang demo`, `hetang serve`, as `make run` runs them."""
    data = tmp_path_factory.mktemp("demo") / "var"
    env = clean_env(HETANG_DATA_DIR=str(data), HETANG_SECRET_KEY=SECRET)
    hetang = str(BIN / "hetang")
    subprocess.run([hetang, "migrate"], env=env, check=True, capture_output=True)
    built = subprocess.run(
        [hetang, "demo", "--if-empty"], env=env, check=True, capture_output=True, text=True
    )
    passwords = dict(re.findall(r"^  (\S+)\s+password (\S+)", built.stdout, re.MULTILINE))
    port = free_port()
    out = data / "serve.out"
    with out.open("wb") as sink:
        server = subprocess.Popen(
            [hetang, "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while "已启动" not in out.read_text():
            assert server.poll() is None and time.monotonic() < deadline, "the server never said"
            time.sleep(0.05)
        yield Demo(
            f"http://127.0.0.1:{port}", built.stdout, passwords, {**env, "HETANG_PORT": str(port)}
        )
    finally:
        stop_process(server)


async def _sign_in(page: Page, demo: Demo, username: str) -> None:
    await page.goto(f"{demo.url}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", demo.passwords[username])
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)


async def _figure(page: Page, key: str) -> str:
    return (await page.locator(f"[data-figure={key}] .stat-value").inner_text()).strip()


async def test_the_start_page_shows_the_session_starting_within_minutes(demo: Demo) -> None:
    starts = re.search(r"today's session starts at (\d\d:\d\d)", demo.printed)
    assert starts is not None, demo.printed
    async with launched() as browser:
        page = await browser.new_page()
        await _sign_in(page, demo, "operator")
        upcoming = page.locator("section[aria-labelledby=upcoming-head] li").first
        await expect(upcoming).to_contain_text(demo_today.TITLE, timeout=WAIT_MS)
        await expect(upcoming).to_contain_text(f"{starts.group(1)}–", timeout=WAIT_MS)
        await expect(upcoming.locator(".badge")).to_have_text("待开始")
        # The operator goes from there to the session, where broadcasting begins.
        await upcoming.locator("a").click()
        await expect(page.locator("h1")).to_contain_text(demo_today.TITLE, timeout=WAIT_MS)
        await expect(page.get_by_text("开始直播").first).to_be_visible()


async def test_the_monthly_report_has_a_citys_figures(demo: Demo) -> None:
    async with launched() as browser:
        page = await browser.new_page()
        await _sign_in(page, demo, "reviewer")
        await page.goto(f"{demo.url}/reports/monthly")
        await expect(page.locator("[data-figure=members_total] .stat-value")).to_have_text("3000")
        coverage = float((await _figure(page, "coverage_ytd_pct")).rstrip("%"))
        below = int(await _figure(page, "below_requirement"))
        untrained = int(await _figure(page, "untrained_ytd"))
        held = int(await _figure(page, "sessions_held"))
    assert 85 <= coverage <= 99.5
    assert 0 < untrained < below < 3000 * 0.35
    assert held >= 10


async def test_a_committees_cabinet_holds_a_year_of_records(demo: Demo) -> None:
    """一党委一专柜 of 西泉镇党委 for the year of the report: nearly every member has records;
    by the last weeks of the year most have completed their hours, some not."""
    reported = month_of(utcnow(), SHANGHAI).previous()
    async with launched() as browser:
        page = await browser.new_page()
        await _sign_in(page, demo, "reviewer")
        await page.goto(f"{demo.url}/organizations/cz-fy-xq/cabinet?year={reported.year}")
        await expect(page.locator("h1")).to_have_text("党员培训档案专柜")
        members = int(await _figure(page, "members_total"))
        complete = int(await _figure(page, "complete"))
        incomplete = int(await _figure(page, "incomplete"))
        untrained = int(await _figure(page, "untrained"))
        rows = await page.locator("table.cabinet-members tbody tr").count()
    assert members == rows == complete + incomplete + untrained > 30
    assert untrained < 0.1 * members
    if reported.month >= 11:
        assert complete > 2 * incomplete > 0


@pytest.fixture
def staff_page(demo: Demo, tmp_path: Path) -> Iterator[str]:
    """`hetang demo-agents`, as `make run` starts it (one agent, on a free port): the URL of
    its staff page once it is announced; the agents are stopped afterwards."""
    ui_port = free_port()
    log = tmp_path / "agents.out"
    command = [str(BIN / "hetang"), "--log-level", "WARNING", "demo-agents", "--count", "1"]
    with log.open("wb") as sink:
        agents = subprocess.Popen(
            [*command, "--ui-port", str(ui_port)],
            env=demo.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while f"http://127.0.0.1:{ui_port}" not in log.read_text():
            assert agents.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "demo agents follow session " in log.read_text()
        yield f"http://127.0.0.1:{ui_port}/"
    finally:
        assert stop_process(agents, signal.SIGTERM) == 0


async def test_a_demo_agent_takes_check_ins_for_todays_session_at_once(staff_page: str) -> None:
    """The agent's staff page offers today's session, and a member on its roster checks in."""
    async with launched() as browser:
        page = await browser.new_page()
        await _until_answers(page, staff_page)
        await expect(page.locator("#venue")).to_contain_text("西泉镇党校", timeout=WAIT_MS)
        await expect(page.locator("#session")).to_contain_text(demo_today.TITLE, timeout=WAIT_MS)
        await page.fill("#search", "341126")  # 凤阳县's members: every one on its roster
        # The rows of the search, not those shown before it (the whole roster's first page).
        await expect(page.locator("#roster-note")).to_contain_text("人相符", timeout=WAIT_MS)
        row = page.locator("#roster tr").first
        await expect(row).to_contain_text("341126")
        await expect(row).to_be_visible(timeout=WAIT_MS)
        await row.get_by_role("button", name="签到").click()
        await expect(page.locator("#message")).to_contain_text("签到成功", timeout=WAIT_MS)
        await expect(page.locator("#present li")).to_have_count(1)


async def _until_answers(page: Page, url: str) -> None:
    """Open the agent's staff page once it listens."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await page.goto(url)
            return
        except PlaywrightError:
            assert time.monotonic() < deadline, f"{url} never answered"
            await asyncio.sleep(0.2)
