"""Two pictures for every link, end to end in this process: the operator's console page in a real
Chromium (fake camera) publishes the lesson in two qualities; both video layers reach the relay;
a venue's aiortc subscriber decodes the full picture and the wall says 高清; once its link loses
packets, its own receiver reports move it to the lighter picture at a keyframe, which it goes on
decoding, and the wall says 流畅."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.keys import BROADCASTS_KEY
from tests.support import browser
from tests.support.chromium import CHROMIUM, FLAGS, confirm_ending, needs_chromium
from tests.support.rtc_peers import LossyLink, Viewer, description, lossy_answer, offer_to_view
from tests.support.sessions import live_session
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only, pytest.mark.solo]
WAIT_MS = 15_000
WAIT_S = WAIT_MS / 1000
CAMERA = (1280, 720)  # Chromium's fake camera, asked for 1280x720 by the page


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        await launched.close()


async def until(check: Callable[[], Any], what: str, within: float = WAIT_S) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)
    return found


async def _wall_quality(client: Any, world: World, session_id: str) -> Any:
    answer = await client.get(f"/api/v1/sessions/{session_id}/wall", headers=world.auth("reviewer"))
    assert answer.status == 200, await answer.text()
    venues = {venue["code"]: venue for venue in (await answer.json())["venues"]}
    return {code: venue["stream_quality"] for code, venue in venues.items()}


async def test_the_page_sends_two_qualities_and_a_lossy_venue_gets_the_lighter_one(
    client: Any, world: World, db: async_sessionmaker[AsyncSession], chromium: Browser
) -> None:
    session_id, tokens = await live_session(client, world)
    token = tokens["B"]
    await browser.add_user(db, "op-two", "operator", "a")
    broadcasts = client.app[BROADCASTS_KEY]
    problems: list[str] = []
    context = await chromium.new_context()
    page = await context.new_page()
    confirm_ending(page)
    page.on("pageerror", lambda error: problems.append(str(error)))
    base = str(client.make_url("/")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "op-two")
    await page.fill("input[name=password]", browser.PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.goto(f"{base}/sessions/{session_id}/console")
    await expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    await page.get_by_role("button", name="开始直播").click()
    await expect(page.locator("#broadcast-status")).to_have_text(
        "正在直播：本页面的画面和声音正在传送到各分会场。", timeout=WAIT_MS
    )

    viewer: Viewer | None = None
    link: LossyLink | None = None
    try:
        # Both layers reach the relay: the camera's picture and the one at half its size.
        layers = await until(
            lambda: (
                (found := broadcasts.layers(session_id))
                and found["video"].picture
                and found["video-low"].picture
                and found["audio"].frames > 0
                and found
            ),
            "two video layers and the sound at the relay",
        )
        # (Until Chrome's bandwidth estimate has grown, its encoders may scale either picture
        # down: the lighter one is at most half the camera's size, the full one at most all of it.)
        high, low = layers["video"].picture, layers["video-low"].picture
        assert low[0] <= CAMERA[0] // 2 and high[0] <= CAMERA[0]
        assert layers["audio"].frames > 0
        assert await _wall_quality(client, world, session_id) == {"M": None, "B": None}

        # Venue B subscribes (as its agent does) through a link that loses packets when told.
        viewer = await offer_to_view()
        answer = await client.post(
            f"/api/v1/agent/sessions/{session_id}/subscribe",
            headers={"Authorization": f"Bearer {token}"},
            json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
        )
        assert answer.status == 200, await answer.text()
        link, relayed = await lossy_answer(description(await answer.json()))
        await viewer.pc.setRemoteDescription(relayed)
        await viewer.frames_after(0, 20, within=WAIT_S)
        assert await _wall_quality(client, world, session_id) == {"M": None, "B": "high"}
        quality = page.locator('#wall .tile[data-code="B"] .stream .quality')
        await expect(quality).to_have_text("高清", timeout=WAIT_MS)
        await expect(quality).to_have_attribute("title", "正在向该会场发送高清画面")

        # The link gets bad: the relay moves B to the lighter picture.
        link.loss = 0.4
        await until(
            lambda: broadcasts.status(session_id).quality.get("B") == "low",
            "venue B on the lighter picture",
        )
        link.loss = 0.0
        [switch] = broadcasts.layer_switches(session_id)["B"]
        assert switch.layer == "low"
        assert switch.done_at - switch.decided_at < 1.0
        await viewer.frames_after(switch.done_at + 0.5, 10)  # it goes on decoding
        assert await _wall_quality(client, world, session_id) == {"M": None, "B": "low"}
        await page.evaluate("HetangConsole.wall.rereadSoon()")
        await expect(quality).to_have_text("流畅", timeout=WAIT_MS)
        # The stream-state badge stays the tile's only badge.
        await expect(page.locator('#wall .tile[data-code="B"] .stream .badge')).to_have_count(1)
        assert viewer.audio_frames > 0
    finally:
        if link is not None:
            link.close()
        if viewer is not None:
            await viewer.close()
        await page.get_by_role("button", name="结束直播").click()
        await expect(page.locator("#broadcast-status")).to_have_text(
            "直播已结束。", timeout=WAIT_MS
        )
        await context.close()
    assert problems == []
