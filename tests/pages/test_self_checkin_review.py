"""The reviewer sees what to check of the self check-ins by phone (扫码签到) on the attendance
page: the members a shared phone checked in (the check-in flagged, the refused second member
kept) and a check-in while the venue's stream was down; a reviewer of another county sees none
of them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.support.browser import Browser, give_password
from tests.support.databases import Db
from tests.support.self_checkin import add_members, code_path, scan, self_checkins, send
from tests.support.sessions import live_session
from tests.support.stream_stats import post_samples
from tests.support.world import World

DOWN = {
    "state": "down",
    "bitrate_kbps": 0,
    "fps": 0,
    "loss_pct": 0,
    "jitter_ms": 0,
    "freezes": 0,
    "frames_decoded": 0,
}


async def test_the_reviewer_sees_the_self_checkins_to_check(
    client: Any, world: World, db: Db
) -> None:
    session_id, tokens = await live_session(client, world)
    await add_members(client, world)
    phone = await scan(client, code_path(tokens["B"], "B", session_id))
    assert (await send(client, phone, "P1", "1234"))[0] == 201
    status, body = await send(client, phone, "P2", "567X")  # the same phone, another member
    assert status == 409, body
    client.session.cookie_jar.clear()  # another phone, while B's stream is down
    sample = {**DOWN, "at": datetime.now(UTC).isoformat()}
    assert await post_samples(client, tokens["B"], session_id, [sample]) == 1
    other = await scan(client, code_path(tokens["B"], "B", session_id))
    assert (await send(client, other, "P3", "0001"))[0] == 201
    assert await self_checkins(db) == [("P1", "shared_phone"), ("P3", "stream_down")]
    for action, role in (("start", "operator"), ("end", "operator"), ("finalize", "reviewer")):
        answer = await client.post(
            f"/api/v1/sessions/{session_id}/{action}", headers=world.auth(role, "a")
        )
        assert answer.status == 200, await answer.text()

    await give_password(db, "reviewer-a")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-a")
        async with browser.request("GET", f"/sessions/{session_id}/attendance") as answer:
            html = await answer.text()
            assert answer.status == 200, html[:2000]
    assert "待核查的扫码签到" in html and "3 条待核查" in html
    rows = dict(re.findall(r'<tr data-review="([^"]+)">(.*?)</tr>', html, re.S))
    assert set(rows) == {"P1", "P2", "P3"}
    assert "同一手机为多名党员签到" in rows["P1"] and "党员P1" in rows["P1"]
    assert "已拒绝：该手机已为另一名党员签到" in rows["P2"]
    assert "签到时本会场直播中断" in rows["P3"] and "会场B" in rows["P3"]

    await give_password(db, "reviewer-b")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-b")
        async with browser.request("GET", f"/sessions/{session_id}/attendance") as answer:
            outside = await answer.text()
    assert "待核查的扫码签到" not in outside and "党员P1" not in outside
