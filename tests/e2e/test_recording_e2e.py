"""A broadcast recorded end to end (issue 15, item 1 and 2), in a real Chromium: the operator's
console publishes Chromium's fake camera and microphone for about a minute; halfway its
connection drops (the relay's end vanishes as in a network failure) and the page republishes by
itself. The server keeps one WebM whose length is the time on air, whose video decodes from start
to end, with the time away listed as a gap; the recordings page plays it, and the browser's
player seeks through Range requests answered 206."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection
from playwright.async_api import Browser, Response, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Recording
from server.settings import Settings
from tests.support import browser
from tests.support.chromium import confirm_ending, launched, needs_chromium, signed_in_page
from tests.support.sessions import live_session
from tests.support.world import World

pytestmark = [needs_chromium, pytest.mark.sqlite_only, pytest.mark.slow, pytest.mark.solo]
WAIT_MS = 15_000
ON_AIR = "正在直播：本页面的画面和声音正在传送到各分会场。"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as opened:
        yield opened


def _relay_peers() -> list[RTCPeerConnection]:
    return [
        found
        for found in gc.get_objects()
        if isinstance(found, RTCPeerConnection) and found.connectionState == "connected"
    ]


async def test_a_minute_on_air_with_a_drop_is_one_playable_recording(
    client: Any,
    world: World,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    chromium: Browser,
) -> None:
    session_id, _ = await live_session(client, world)
    await browser.add_user(db, "op-rec", "operator", "a")
    base = str(client.make_url("/")).rstrip("/")
    page = await signed_in_page(chromium, base, "op-rec")
    confirm_ending(page)
    await page.goto(f"{base}/sessions/{session_id}/console")
    await expect(page.locator("#camera option")).not_to_have_count(0, timeout=WAIT_MS)
    await page.get_by_role("button", name="开始直播").click()
    status = page.locator("#broadcast-status")
    await expect(status).to_have_text(ON_AIR, timeout=WAIT_MS)
    on_air = time.monotonic()
    await asyncio.sleep(30)
    [publisher] = _relay_peers()
    for transceiver in publisher.getTransceivers():
        await transceiver.receiver.transport.transport.stop()
    await expect(status).to_have_text("已恢复直播。", timeout=WAIT_MS)
    await asyncio.sleep(max(0.0, 60 - (time.monotonic() - on_air)))
    await page.get_by_role("button", name="结束直播").click()
    await expect(status).to_have_text("直播已结束。", timeout=WAIT_MS)
    broadcast_s = time.monotonic() - on_air

    async with db() as session:
        [row] = list(await session.scalars(select(Recording)))
    assert row.ended_at is not None and row.problem is None and row.duration_ms is not None
    assert abs(row.duration_ms / 1000 - broadcast_s) < 2.0, (row.duration_ms, broadcast_s)
    assert len(row.gaps) == 1, row.gaps
    gap_start, gap_end = row.gaps[0]
    assert 25 < gap_start < 36 and gap_end > gap_start
    path = settings.data_dir / "recordings" / row.file_name
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
        times = [float(frame.time or 0) for frame in container.decode(video=0)]
    assert abs(duration - broadcast_s) < 2.0, (duration, broadcast_s)
    assert times[0] < 1.0 and times[-1] > broadcast_s - 2.0  # decodes from start to end
    # Nothing inside the gap (WebM keeps times to the millisecond).
    before = [t for t in times if t <= gap_start + 0.002]
    after = [t for t in times if t >= gap_end - 0.002]
    assert before and after and len(before) + len(after) == len(times)

    reviewer = await signed_in_page(chromium, base, "op-rec")
    ranged: list[Response] = []
    reviewer.on("response", lambda answer: ranged.append(answer) if answer.status == 206 else None)
    await reviewer.goto(f"{base}/sessions/{session_id}/recordings")
    card = reviewer.locator(f'section.recording[data-recording="{row.public_id}"]')
    await expect(card.locator("[data-gap]")).to_have_count(1)
    await expect(card.locator(".meta")).to_contain_text("MB")
    player = card.locator("video.recording-player")
    deadline = time.monotonic() + 15
    while not await player.evaluate("video => video.readyState >= 1 && video.duration > 0"):
        assert time.monotonic() < deadline, "the player never loaded the recording's metadata"
        await asyncio.sleep(0.2)
    await player.evaluate("video => { video.currentTime = video.duration * 0.8; }")
    deadline = time.monotonic() + 15
    while not ranged:
        assert time.monotonic() < deadline, "no Range request was answered 206"
        await asyncio.sleep(0.2)
    assert ranged[0].headers["content-type"] == "video/webm"
    assert ranged[0].headers["content-range"].startswith("bytes ")
