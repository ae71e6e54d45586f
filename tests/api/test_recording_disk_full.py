"""A full disk stops the recording, never the broadcast (issue 15): the recordings directory is a
tiny tmpfs; an aiortc publisher sends a busy picture until it is full. The wall says the
recording stopped and why (a reviewer's console in Chromium shows the alarm without a reload),
the venue keeps receiving pictures, a check-in sent meanwhile is stored, and the recording's row
says disk_full when the broadcast ends."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiortc import AudioStreamTrack
from playwright.async_api import Browser, expect
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import CheckIn, Recording
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue, audit_count
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.rtc_peers import (
    LOOPBACK,
    PatternTrack,
    before_gathering,
    description,
    new_peer,
    offer_to_view,
)
from tests.support.world import World

pytestmark = [pytest.mark.sqlite_only, needs_chromium]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


async def wall(client: Any, world: World, session_id: str) -> dict[str, Any]:
    answer = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("reviewer", "a")
    )
    assert answer.status == 200
    body: dict[str, Any] = await answer.json()
    return body


async def test_a_full_disk_stops_the_recording_and_nothing_else(
    aiohttp_client: Any,
    world: World,
    db: async_sessionmaker[AsyncSession],
    settings: Settings,
    small_disk: Path,
    chromium: Browser,
) -> None:
    client = await aiohttp_client(create_app(replace(settings, recordings_dir=small_disk)))
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    member = await client.post(
        "/api/v1/members",
        headers=world.auth("admin", "a"),
        json={"member_no": "DF-1", "name": "张党员", "org_code": "a1", "category": "ordinary"},
    )
    assert member.status == 201, await member.text()
    # A reviewer watches the wall from before the broadcast: the alarm comes without a reload.
    await add_user(db, "rev-disk", "reviewer", "a")
    base = str(client.make_url("/")).rstrip("/")
    console = await signed_in_page(chromium, base, "rev-disk")
    await console.goto(f"{base}/sessions/{session_id}/console")
    alarm = console.locator("#recording-alarm")
    await expect(alarm).to_be_hidden()
    publisher = new_peer(LOOPBACK)
    publisher.addTrack(AudioStreamTrack())
    publisher.addTrack(PatternTrack(640, 360))
    before_gathering(publisher, LOOPBACK)
    await publisher.setLocalDescription(await publisher.createOffer())
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/broadcast",
        headers=world.auth("operator", "a"),
        json={"sdp": publisher.localDescription.sdp, "type": "offer"},
    )
    assert answer.status == 200, await answer.text()
    await publisher.setRemoteDescription(description(await answer.json()))
    viewer = await offer_to_view()
    subscribed = await client.post(
        f"/api/v1/agent/sessions/{session_id}/subscribe",
        headers={"Authorization": f"Bearer {branch}"},
        json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
    )
    assert subscribed.status == 200, await subscribed.text()
    await viewer.pc.setRemoteDescription(description(await subscribed.json()))
    try:
        assert (await wall(client, world, session_id))["broadcast"]["recording"] == {
            "state": "on",
            "problem": None,
        }
        deadline = time.monotonic() + 60
        while (await wall(client, world, session_id))["broadcast"]["recording"][
            "state"
        ] != "stopped":
            assert time.monotonic() < deadline, "the tiny disk never filled"
            await asyncio.sleep(0.5)
        broadcast = (await wall(client, world, session_id))["broadcast"]
        assert broadcast["recording"] == {"state": "stopped", "problem": "disk_full"}
        assert broadcast["on"] and broadcast["publishing"]
        await expect(alarm).to_be_visible(timeout=15_000)
        await expect(alarm).to_contain_text("录像已停止：磁盘已满。直播仍在继续")
        stopped = time.monotonic()
        await viewer.frames_after(stopped, 10)  # the venue still gets pictures
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        checked = await client.post(
            "/api/v1/agent/checkins",
            headers={"Authorization": f"Bearer {branch}"},
            json={
                "sent_at": stamp,
                "events": [
                    {
                        "event_id": str(uuid.uuid4()),
                        "session_id": session_id,
                        "member_no": "DF-1",
                        "kind": "in",
                        "at": stamp,
                        "source": "scanner",
                    }
                ],
            },
        )
        assert checked.status == 200, await checked.text()
        assert [r["status"] for r in (await checked.json())["results"]] == ["accepted"]
    finally:
        ended = await client.delete(
            f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
        )
        await publisher.close()
        await viewer.pc.close()
    assert ended.status == 200
    async with db() as session:
        [row] = list(await session.scalars(select(Recording)))
        stored = await session.scalar(select(func.count()).select_from(CheckIn))
    assert row.problem == "disk_full" and row.ended_at is not None and row.duration_ms
    assert stored == 1
    assert await audit_count(db, "session.recording_stop") == 1
