"""The review page's stream timeline: each branch venue's bar over the session window with a
titled span per state, the time that was not verified written out, and the verified minutes the
finalized result stores; in Chinese by default, in English on request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import SessionVenue, TrainingSession, Venue
from tests.support.sessions import live_session, schedule_worked_example
from tests.support.stream_stats import (
    post_samples,
    review_page,
    timeline_block,
    timeline_spans,
)
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
NINE = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, the session's start


def _morning() -> list[dict[str, Any]]:
    """B1's morning, a sample every 5 s: good until 10:00, stuttering until 10:10, interrupted
    until 10:30, silent until 10:40 (the agent was off), then good to the end."""
    samples = []
    for step in range(0, 3 * 3600, 5):
        minute = step // 60
        if 90 <= minute < 100:
            continue
        state = "good" if minute < 60 or minute >= 100 else "degraded" if minute < 70 else "down"
        moment = NINE + timedelta(seconds=step)
        samples.append({"at": moment.isoformat(), "state": state, "bitrate_kbps": 900.0})
    return samples


async def _finalized(client: Any, world: World) -> str:
    session_id, tokens = await schedule_worked_example(client, world)
    await post_samples(client, tokens["B1"], session_id, _morning())
    await _run(client, world, session_id)
    return session_id


async def _run(client: Any, world: World, session_id: str) -> None:
    """Start, end and finalize the session through the API."""
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    for action, who in (("start", operator), ("end", operator), ("finalize", reviewer)):
        answer = await client.post(f"/api/v1/sessions/{session_id}/{action}", headers=who)
        assert answer.status == 200, await answer.text()


async def _up_seconds(db: Db, session_id: str) -> dict[str, int | None]:
    """The stream up-time finalizing stored for each venue of the session."""
    async with db() as session:
        rows = await session.execute(
            select(Venue.code, SessionVenue.up_seconds)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .join(TrainingSession, TrainingSession.id == SessionVenue.session_id)
            .where(TrainingSession.public_id == session_id)
        )
        return {code: up for code, up in rows}


async def test_each_branch_venue_s_timeline_shows_why_time_was_not_verified(
    client: Any, world: World, db: Db
) -> None:
    session_id = await _finalized(client, world)
    stored = await _up_seconds(db, session_id)
    # 09:00–10:10 and 10:40–12:00 up: what finalizing stored, and what the page says.
    assert stored["B1"] == 150 * 60 and stored["B2"] == 0
    html = await review_page(client, db, session_id)
    assert "各分会场直播时间线" in html
    for label in ("良好", "卡顿", "中断", "未上报"):
        assert f"</svg>{label}</li>" in html  # the legend
    assert "培训已结束" not in html  # ended after the window: no such colour to explain
    assert "卡顿的时段仍计入核验时长；中断、未上报和未直播的时段不计入。" in html
    assert '<code class="muted">M</code></p>' not in html  # the main venue is the source
    b1 = timeline_block(html, "B1")
    assert "已核验 150 分钟 / 180 分钟" in b1
    assert timeline_spans(b1) == [
        ("good", "良好：09:00:00 至 10:00:00（共 60 分钟）"),
        ("degraded", "卡顿：10:00:00 至 10:10:00（共 10 分钟）"),
        # The last "down" sample at 10:29:55 vouches for three stats intervals.
        ("down", "中断：10:10:00 至 10:30:10（共 20 分 10 秒）"),
        ("none", "未上报：10:30:10 至 10:40:00（共 9 分 50 秒）"),
        ("good", "良好：10:40:00 至 12:00:00（共 80 分钟）"),
    ]
    boxes = re.findall(r'<rect class="tl-\w+" x="([\d.]+)" y="0" width="([\d.]+)"', b1)
    assert boxes == [
        ("0", "333.33"),
        ("333.33", "55.56"),
        ("388.89", "112.04"),
        ("500.93", "54.63"),
        ("555.56", "444.44"),
    ]
    assert 'role="img"' in b1 and "<title id=" in b1 and "会场B1的直播接收情况" in b1
    gaps = b1.split('class="timeline-gaps"', 1)[1]
    assert "未核验时段：" in gaps
    assert "中断：10:10:00 至 10:30:10（共 20 分 10 秒）" in gaps
    assert "未上报：10:30:10 至 10:40:00（共 9 分 50 秒）" in gaps
    assert "良好" not in gaps
    b2 = timeline_block(html, "B2")
    assert "已核验 0 分钟 / 180 分钟" in b2
    assert timeline_spans(b2) == [("none", "未上报：09:00:00 至 12:00:00（共 180 分钟）")]

    english = await review_page(client, db, session_id, english=True)
    assert "Stream timeline of each branch venue" in english
    b1 = timeline_block(english, "B1")
    assert "Verified 150 of 180 minutes" in b1
    assert ("down", "Interrupted 10:10:00–10:30:10 (20 min 10 s)") in timeline_spans(b1)
    assert "Not verified:" in b1 and "未" not in b1


async def test_time_after_the_session_was_ended_is_shown_as_such(
    client: Any, world: World, db: Db
) -> None:
    session_id, tokens = await live_session(client, world)
    answer = await client.get(f"/api/v1/sessions/{session_id}", headers=world.auth("operator"))
    starts_at = datetime.fromisoformat((await answer.json())["starts_at"])
    samples = [
        {"at": (starts_at + timedelta(seconds=5 * k)).isoformat(), "state": "good"}
        for k in range(50)
    ]
    await post_samples(client, tokens["B"], session_id, samples)
    # Ended two hours early: the lesson is over, whatever an agent reports afterwards.
    await _run(client, world, session_id)
    up = (await _up_seconds(db, session_id))["B"]
    assert up is not None
    html = await review_page(client, db, session_id)
    assert "</svg>培训已结束</li>" in html  # the legend explains the colour
    block = timeline_block(html, "B")
    assert f"已核验 {up // 60} 分钟 / 125 分钟" in block  # from 5 minutes ago for two hours
    spans = timeline_spans(block)
    assert spans[0][0] == "good" and spans[0][1].startswith("良好：")
    assert spans[-1][0] == "ended" and spans[-1][1].startswith("培训已结束：")
    assert spans[-1][1] in block.split('class="timeline-gaps"', 1)[1]
