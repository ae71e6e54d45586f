"""A make-up session plays at its set time (issue 15, item 3): when the workflow clock's round
finds a make-up session whose start has come and that has never been on air, it starts the
session and plays the recording to its venues as the system; a second round changes nothing,
and one an operator took off the air stays off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passthrough.recorder import Recorder
from server.db.models import AuditEntry, BroadcastSpan, TrainingSession
from server.keys import BROADCASTS_KEY
from server.replays import play_due_replays
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue
from tests.support.media_frames import Clock, feed, opus_frames, vp8_frames
from tests.support.recordings import add_recording
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only
Db = async_sessionmaker[AsyncSession]


async def recorded_lesson(client: Any, world: World, db: Db, settings: Settings) -> str:
    """A lesson with a 4 s recording on disk (real VP8 and Opus), as its broadcast left it."""
    lesson = await add_session(client, world, "MAIN", ["B1"])
    settings.recordings_home.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    recorder = Recorder(settings.recordings_home / "lesson.webm", clock=clock)
    feed(recorder, clock, 4.0, 0.0, iter(vp8_frames(130)), iter(opus_frames(210)))
    summary = recorder.close()
    await add_recording(
        db,
        lesson,
        "lesson.webm",
        datetime.now(UTC) - timedelta(hours=1),
        length=timedelta(seconds=summary.duration_s),
        size=summary.bytes,
    )
    return lesson


async def test_the_clock_plays_a_makeup_session_at_its_time(
    client: Any, world: World, db: Db, settings: Settings
) -> None:
    await add_venue(client, world, "MAIN")
    await add_venue(client, world, "B1")
    lesson = await recorded_lesson(client, world, db, settings)
    now = datetime.now(UTC)
    makeup = await add_session(
        client,
        world,
        "MAIN",
        ["B1"],
        title="补学",
        starts_at=(now + timedelta(minutes=10)).isoformat(),
        replay_of=lesson,
    )
    app = client.server.app
    assert await play_due_replays(app, now) == []  # not yet its time
    assert await play_due_replays(app, now + timedelta(minutes=11)) == [makeup]
    status = app[BROADCASTS_KEY].status(makeup)
    assert status.on and status.publishing
    async with db() as session:
        state = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == makeup)
        )
        spans = await session.scalar(select(func.count()).select_from(BroadcastSpan))
        starts = await session.scalar(
            select(func.count()).where(
                AuditEntry.action == "session.broadcast_start", AuditEntry.actor == "system"
            )
        )
    assert (state, spans, starts) == ("live", 1, 1)
    assert await play_due_replays(app, now + timedelta(minutes=12)) == []  # on air already
    ended = await client.delete(
        f"/api/v1/sessions/{makeup}/broadcast", headers=world.auth("operator", "a")
    )
    assert ended.status == 200
    assert await play_due_replays(app, now + timedelta(minutes=13)) == []  # stays off
    assert not app[BROADCASTS_KEY].status(makeup).on

    # A make-up session whose file went missing is refused in words, and nothing goes on air.
    (settings.recordings_home / "lesson.webm").unlink()
    second = await add_session(client, world, "MAIN", ["B1"], title="补学（二）", replay_of=lesson)
    refused = await client.post(
        f"/api/v1/sessions/{second}/replay", headers=world.auth("operator", "a")
    )
    assert refused.status == 409
    assert "录像已不在服务器上" in (await refused.json())["error"]["message"]
    assert await play_due_replays(app, now + timedelta(minutes=1)) == []
    assert not app[BROADCASTS_KEY].status(second).on
    async with db() as session:
        state = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == second)
        )
    assert state == "scheduled"  # not started by the clock without its recording
