"""The operator console in a real Chromium (Debian's, fake camera and microphone): operators get
the broadcast controls with the devices listed, reviewers only the wall; the wall follows the
agents' stream reports live; a broadcast starts and ends, is taken over by another page without
the two fighting, and comes back by itself after its connection drops."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import browser
from tests.support.broadcast_api import publish
from tests.support.chromium import CHROMIUM, FLAGS, confirm_ending, needs_chromium
from tests.support.sessions import live_session
from tests.support.world import World

WAIT_MS = 15_000

pytestmark = [needs_chromium, pytest.mark.sqlite_only]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """One Chromium per test; every page gets a context (cookies) of its own."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


@dataclass
class Console:
    """A signed-in page with the session's console open, and what went wrong in its scripts."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def status(self) -> Any:
        """The broadcast status line."""
        return self.page.locator("#broadcast-status")

    def tile(self, code: str) -> Any:
        """A venue's tile on the wall."""
        return self.page.locator(f'#wall .tile[data-code="{code}"]')


@dataclass
class Stage:
    """A session running now: main venue M, branch venue B, and people to sign in."""

    client: Any
    chromium: Browser
    session_id: str
    tokens: dict[str, str]
    consoles: list[Console] = field(default_factory=list)

    async def console(self, username: str) -> Console:
        """Sign in through the form like a person, then open the console."""
        context = await self.chromium.new_context()
        page = await context.new_page()
        confirm_ending(page)
        opened = Console(page)
        page.on("pageerror", lambda error: opened.problems.append(f"script: {error}"))
        page.on("console", lambda message: _note_console(opened, message))
        base = str(self.client.make_url("/")).rstrip("/")
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", browser.PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda url: "/login" not in url)
        await page.goto(f"{base}/sessions/{self.session_id}/console")
        await expect(page.locator("#live-status")).to_have_text("实时更新中", timeout=WAIT_MS)
        self.consoles.append(opened)
        return opened

    async def wall(self, world: World) -> dict[str, Any]:
        """The wall as the API answers it."""
        answer = await self.client.get(
            f"/api/v1/sessions/{self.session_id}/wall", headers=world.auth("reviewer", "a")
        )
        assert answer.status == 200, await answer.text()
        body: dict[str, Any] = await answer.json()
        return body

    async def heartbeat(self, code: str) -> None:
        """One heartbeat of a venue's agent: it is online for the next 45 s."""
        answer = await self.client.post(
            "/api/v1/agent/heartbeat",
            headers={"Authorization": f"Bearer {self.tokens[code]}"},
            json={
                "state": "receiving",
                "session_id": self.session_id,
                "queue_depth": 0,
                "agent_version": "test",
            },
        )
        assert answer.status == 200, await answer.text()

    async def stats(self, code: str, state: str, **numbers: Any) -> None:
        """One stream-health report of a venue's agent, through the agent API."""
        now = datetime.now(UTC).replace(microsecond=0)
        sample = {
            "at": now.isoformat(),
            "state": state,
            "bitrate_kbps": 980.0,
            "fps": 25.0,
            "loss_pct": 0.4,
            "jitter_ms": 3.0,
            "freezes": 0,
            "frames_decoded": 500,
            **numbers,
        }
        answer = await self.client.post(
            "/api/v1/agent/stream-stats",
            headers={"Authorization": f"Bearer {self.tokens[code]}"},
            json={"sent_at": now.isoformat(), "session_id": self.session_id, "samples": [sample]},
        )
        assert answer.status == 200, await answer.text()


def _note_console(opened: Console, message: Any) -> None:
    # The browser's own favicon request is not the page's doing.
    if message.type == "error" and "favicon" not in (message.location or {}).get("url", ""):
        opened.problems.append(f"console: {message.text}")


@pytest.fixture
async def stage(
    client: Any, world: World, db: async_sessionmaker[AsyncSession], chromium: Browser
) -> AsyncIterator[Stage]:
    session_id, tokens = await live_session(client, world)
    await browser.add_user(db, "op-console", "operator", "a")
    await browser.add_user(db, "op-laptop", "operator", "a")
    await browser.add_user(db, "rev-console", "reviewer", "a")
    staged = Stage(client, chromium, session_id, tokens)
    yield staged
    for opened in staged.consoles:
        assert opened.problems == [], opened.problems


async def _until(page: Page, expression: str) -> None:
    """Poll a page expression (wait_for_function compiles its predicate with eval, which the
    page's CSP forbids: whether that is reported depends on timing)."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while not await page.evaluate(expression):
        assert asyncio.get_running_loop().time() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


async def _options(page: Page, select: str) -> list[str]:
    labels: list[str] = await page.eval_on_selector_all(
        f"{select} option", "options => options.map(option => option.textContent)"
    )
    return labels


async def test_an_operator_gets_the_controls_and_the_devices(stage: Stage) -> None:
    console = await stage.console("op-console")
    page = console.page
    await expect(page.locator("#broadcast h2")).to_have_text("直播推流")
    await expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    assert await _options(page, "#camera") == ["fake_device_0"]
    assert "Fake Default Audio Input" in await _options(page, "#microphone")
    await _until(page, "document.getElementById('preview').videoWidth > 0")
    assert await page.eval_on_selector("#preview", "video => video.muted && video.autoplay")
    start = page.get_by_role("button", name="开始直播")
    await expect(start).to_be_enabled()
    await expect(page.get_by_role("button", name="结束直播")).to_be_disabled()
    await expect(page.get_by_role("button", name="在此页面接管直播")).to_be_hidden()
    await expect(console.status()).to_contain_text("尚未开始直播")
    readiness = page.locator("#readiness")
    # The main venue sends from this page and needs no agent: only branch venues are counted.
    await expect(readiness).to_contain_text("分会场终端在线 0 个，共 1 个")
    await expect(readiness).to_contain_text("离线会场（1 个）：")
    await expect(readiness.locator(".offline-list li")).to_have_text(["会场B"])
    await expect(readiness).to_contain_text("直播接收良好的分会场 0 个，共 1 个")
    await expect(console.tile("M")).to_contain_text("主会场（信号源）")
    await expect(console.tile("M").locator(".agent")).to_have_text("由直播页面发送画面，无需终端")
    await expect(console.tile("M").locator(".stream")).to_contain_text("未直播")
    await expect(console.tile("B").locator(".stream .badge")).to_have_text("终端离线")


async def test_a_reviewer_sees_the_wall_without_controls(stage: Stage) -> None:
    console = await stage.console("rev-console")
    page = console.page
    await expect(console.tile("B")).to_be_visible()
    await expect(page.locator("#readiness")).to_contain_text("分会场终端在线 0 个，共 1 个")
    assert await page.locator("#broadcast, video, select").count() == 0
    assert await page.get_by_role("button", name="开始直播").count() == 0


async def test_the_stream_badge_follows_the_agents_reports_live(stage: Stage, world: World) -> None:
    console = await stage.console("rev-console")
    page = console.page
    badge = console.tile("B").locator(".stream .badge")
    await expect(badge).to_have_text("终端离线")
    await stage.heartbeat("B")
    publisher = await publish(stage.client, world, stage.session_id)
    try:
        await expect(badge).to_have_text("未上报", timeout=WAIT_MS)
        await page.evaluate("window.stillTheSamePage = true")
        await stage.stats("B", "good")
        await expect(badge).to_have_text("良好", timeout=WAIT_MS)
        assert await badge.get_attribute("class") == "badge stream-good"
        metrics = console.tile("B").locator(".stream .metrics")
        await expect(metrics).to_have_text("码率 980 kbps · 帧率 25 fps · 丢包 0.4% · 卡顿次数 0")
        readiness = page.locator("#readiness")
        await expect(readiness).to_contain_text("直播接收良好的分会场 1 个，共 1 个")
        await expect(readiness).to_have_class(re.compile(r"\bready\b"))  # it can turn green
        await asyncio.sleep(1.1)  # the next report is a second later, as agents' are
        await stage.stats("B", "degraded", fps=9.5, loss_pct=7.25, freezes=3)
        await expect(badge).to_have_text("卡顿", timeout=WAIT_MS)
        await expect(metrics).to_contain_text("帧率 10 fps · 丢包 7.3% · 卡顿次数 3")
        await expect(readiness).to_contain_text("直播接收良好的分会场 0 个，共 1 个")
        await expect(readiness).to_have_class(re.compile(r"\bnot-ready\b"))
        assert (await stage.wall(world))["venues"][1]["stream"]["state"] == "degraded"
        await asyncio.sleep(1.1)
        await stage.stats("B", "down", fps=0.0)
        await expect(badge).to_have_text("中断", timeout=WAIT_MS)
        # Filters: the interrupted venue alone; the main venue is no problem.
        await page.get_by_role("button", name=re.compile("^中断")).click()
        await expect(console.tile("M")).to_be_hidden()
        await expect(console.tile("B")).to_be_visible()
        await expect(page.get_by_role("button", name=re.compile("^需要处理"))).to_contain_text("1")
    finally:
        await publisher.close()
    ended = await stage.client.delete(
        f"/api/v1/sessions/{stage.session_id}/broadcast", headers=world.auth("operator", "a")
    )
    assert ended.status == 200, await ended.text()
    # After a planned 结束直播 the agent reports nothing to receive: grey, not a red outage.
    await asyncio.sleep(1.1)
    await stage.stats("B", "down", fps=0.0)
    await expect(badge).to_have_text("未直播", timeout=WAIT_MS)
    assert await badge.get_attribute("class") == "badge stream-none"
    await page.get_by_role("button", name=re.compile("^全部会场")).click()
    await expect(console.tile("M")).to_be_visible()
    await expect(page.locator("#readiness")).to_have_class(re.compile(r"\bready\b"))
    assert await page.evaluate("window.stillTheSamePage") is True
    wall = await stage.wall(world)
    assert [(v["code"], v["condition"], v["problem"]) for v in wall["venues"]] == [
        ("M", "not_on_air", False),
        ("B", "off_air", False),
    ]


async def _on_air(console: Console) -> None:
    await expect(console.status()).to_have_text(
        "正在直播：本页面的画面和声音正在传送到各分会场。", timeout=WAIT_MS
    )


async def test_start_and_end_a_broadcast(stage: Stage, world: World) -> None:
    console = await stage.console("op-console")
    page = console.page
    await expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    await page.get_by_role("button", name="开始直播").click()
    await _on_air(console)
    broadcast = (await stage.wall(world))["broadcast"]
    assert broadcast["on"] and broadcast["publishing"]
    await expect(console.tile("M").locator(".stream .badge")).to_have_text("直播中")
    await expect(page.get_by_role("button", name="开始直播")).to_be_hidden()
    await page.get_by_role("button", name="结束直播").click()
    await expect(console.status()).to_have_text("直播已结束。", timeout=WAIT_MS)
    assert (await stage.wall(world))["broadcast"]["on"] is False
    await expect(page.get_by_role("button", name="开始直播")).to_be_visible()
    await expect(console.tile("M").locator(".stream .badge")).to_have_text("未直播")
    assert await page.eval_on_selector("#preview", "video => video.srcObject === null")


async def test_a_takeover_is_not_fought_back(stage: Stage, world: World) -> None:
    first = await stage.console("op-console")
    await expect(first.page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    await first.page.get_by_role("button", name="开始直播").click()
    await _on_air(first)
    second = await stage.console("op-laptop")
    await expect(second.status()).to_contain_text("直播正在进行，由其他页面或电脑推流")
    take_over = second.page.get_by_role("button", name="在此页面接管直播")
    await expect(take_over).to_be_enabled(timeout=WAIT_MS)
    await take_over.click()
    await _on_air(second)
    await expect(first.status()).to_have_text(
        "直播已由其他页面接管，本页面已停止推流。", timeout=WAIT_MS
    )
    await expect(first.page.get_by_role("button", name="在此页面接管直播")).to_be_visible()
    # Long enough for the first page's old connection to time out: it must not publish again.
    await asyncio.sleep(9)
    await expect(first.status()).to_have_text("直播已由其他页面接管，本页面已停止推流。")
    await _on_air(second)
    assert (await stage.wall(world))["broadcast"]["publishing"] is True


def _relay_peers() -> list[RTCPeerConnection]:
    """The server's connected peer connections (the app runs in this process)."""
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, RTCPeerConnection) and found.connectionState == "connected"
    ]


async def test_the_page_republishes_after_its_connection_drops(stage: Stage, world: World) -> None:
    console = await stage.console("op-console")
    await expect(console.page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    await console.page.get_by_role("button", name="开始直播").click()
    await _on_air(console)
    [publisher] = _relay_peers()
    # The relay's end of the path vanishes as in a network failure: no DTLS goodbye is sent.
    for transceiver in publisher.getTransceivers():
        await transceiver.receiver.transport.transport.stop()
    await expect(console.status()).to_have_text("连接中断，正在自动重新推流…", timeout=WAIT_MS)
    await expect(console.status()).to_have_text("已恢复直播。", timeout=WAIT_MS)
    deadline = time.monotonic() + 10
    while not (await stage.wall(world))["broadcast"]["publishing"]:
        assert time.monotonic() < deadline, "the server never saw the new publisher"
        await asyncio.sleep(0.2)
    assert [peer is publisher for peer in _relay_peers()] == [False]
