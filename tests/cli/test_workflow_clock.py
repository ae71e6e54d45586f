"""The session workflow's clock: a session left live ends 30 minutes after its window, and an
ended one is finalized 30 minutes after it ended — by the server itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEntry, TrainingSession
from server.db.session import read_session, write_session
from server.services import workflow
from server.settings import Settings
from tests.support.clock_app import fast_clock
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]


async def _past_live_session(client: Any, world: World, minutes_ago: int) -> str:
    admin = world.auth("admin", "a")
    await client.post(
        "/api/v1/venues", headers=admin, json={"code": "M", "name": "主会场", "org_code": "a"}
    )
    now = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sessions",
        headers=admin,
        json={
            "title": "补录场次",
            "topic_code": "T1",
            "credit_hours": 2,
            "main_venue": "M",
            "starts_at": (now - timedelta(minutes=minutes_ago + 120)).isoformat(),
            "ends_at": (now - timedelta(minutes=minutes_ago)).isoformat(),
        },
    )
    session_id: str = (await created.json())["id"]
    started = await client.post(f"/api/v1/sessions/{session_id}/start", headers=admin)
    assert started.status == 200
    return session_id


async def test_the_clock_ends_and_later_finalizes(
    client: Any, world: World, db: Db, settings: Settings
) -> None:
    overdue = await _past_live_session(client, world, minutes_ago=31)
    async with fast_clock(client, settings):
        for _ in range(200):
            async with read_session(db) as session:
                state = await session.scalar(
                    select(TrainingSession.state).where(TrainingSession.public_id == overdue)
                )
            if state == "ended":
                break
            await asyncio.sleep(0.05)
    assert state == "ended"
    async with read_session(db) as session:
        actors = (
            (
                await session.execute(
                    select(AuditEntry.actor).where(AuditEntry.action == "session.end")
                )
            )
            .scalars()
            .all()
        )
    assert actors == ["system"]
    # Not yet due for finalization; 31 minutes later it is.
    async with read_session(db) as session:
        assert await workflow.due_actions(session, datetime.now(UTC)) == []
        later = datetime.now(UTC) + timedelta(minutes=31)
        due = await workflow.due_actions(session, later)
    assert due == [(overdue, "finalize")]
    async with write_session(db) as session:
        await workflow.run_due(session, overdue, "finalize", settings.tz, later)
    answer = await client.get(
        f"/api/v1/sessions/{overdue}/attendance", headers=world.auth("reviewer", "a")
    )
    assert answer.status == 200
    assert (await answer.json())["session"]["state"] == "finalized"


async def test_a_session_still_in_its_grace_is_left_alone(
    client: Any, world: World, db: Db
) -> None:
    recent = await _past_live_session(client, world, minutes_ago=5)
    async with read_session(db) as session:
        assert await workflow.due_actions(session, datetime.now(UTC)) == []
        state = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == recent)
        )
    assert state == "live"
