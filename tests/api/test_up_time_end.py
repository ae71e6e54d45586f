"""Up-time past the end (issue 13, item 3) through the real API and database: a session ended a
minute into its broadcast and finalized before the branch agent's last `down` sample arrived
stores the minute the stream was up, not the 15 s the last `good` sample could vouch for after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Attendance,
    AuditEntry,
    Member,
    SessionVenue,
    TrainingSession,
    Venue,
)
from tests.support.client import Client
from tests.support.sessions import live_session
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]


async def _agent_post(client: Client, token: str, path: str, body: dict[str, Any]) -> None:
    answer = await client.post(
        f"/api/v1/agent/{path}",
        headers={"Authorization": f"Bearer {token}"},
        # The agent measured no offset: the times it sends are the server's.
        json={"sent_at": datetime.now(UTC).isoformat(), "clock_offset_ms": 0, **body},
    )
    assert answer.status == 200, await answer.text()


def _sample(moment: datetime, state: str) -> dict[str, Any]:
    figures = {"bitrate_kbps": 900.0, "fps": 30, "loss_pct": 0.1, "jitter_ms": 4.0}
    return {"at": moment.isoformat(), "state": state, **figures}


async def _stored(db: Db, training: TrainingSession) -> tuple[dict[str, Any], ...]:
    """Verified seconds by member, up seconds by venue, and the audit trail's length."""
    by_member = (
        select(Member.member_no, Attendance.verified_seconds)
        .join(Member, Member.id == Attendance.member_id)
        .where(Attendance.session_id == training.id)
    )
    by_venue = (
        select(Venue.code, SessionVenue.up_seconds)
        .join(Venue, Venue.id == SessionVenue.venue_id)
        .where(SessionVenue.session_id == training.id)
    )
    async with db() as session:
        found = [dict((await session.execute(query)).all()) for query in (by_member, by_venue)]
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    return (*found, {"audit entries": audited})


async def test_a_one_minute_broadcast_finalized_early_verifies_one_minute(
    client: Client, world: World, db: Db
) -> None:
    session_id, tokens = await live_session(client, world)
    for number in ("X", "Y"):
        answer = await client.post(
            "/api/v1/members",
            headers=world.auth("admin", "a"),
            json={"member_no": number, "name": number, "org_code": "a1", "category": "ordinary"},
        )
        assert answer.status == 201, await answer.text()
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    for action in ("start", "end"):
        answer = await client.post(f"/api/v1/sessions/{session_id}/{action}", headers=operator)
        assert answer.status == 200, await answer.text()
    async with db() as session:
        training = (
            await session.execute(
                select(TrainingSession).where(TrainingSession.public_id == session_id)
            )
        ).scalar_one()
    assert training.ended_at is not None
    length = int(training.ends_at.timestamp()) - int(training.starts_at.timestamp())
    # X sat at the branch B, Y at the main venue M, from the start (walk-ins: credited alike).
    for venue, number in (("B", "X"), ("M", "Y")):
        checkin = {
            "event_id": str(uuid.uuid4()),
            "session_id": session_id,
            "member_no": number,
            "kind": "in",
            "at": training.starts_at.isoformat(),
            "source": "scanner",
        }
        await _agent_post(client, tokens[venue], "checkins", {"events": [checkin]})
    # The broadcast reached B 63 s before the operator's End (a broadcast may begin before the
    # session's Start, which therefore bounds nothing); B's agent said `good` every 5 s from
    # then, the last 58 s in. Its final `down`, at the End, is still in its outbox.
    ended = datetime.fromtimestamp(int(training.ended_at.timestamp()), UTC)
    good = [_sample(ended - timedelta(seconds=60 - 5 * k), "good") for k in range(12)]
    await _agent_post(
        client, tokens["B"], "stream-stats", {"session_id": session_id, "samples": good}
    )
    answer = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert answer.status == 200, await answer.text()
    answer = await client.get(f"/api/v1/sessions/{session_id}/attendance", headers=reviewer)
    body = await answer.json()
    members = {m["member_no"]: m for m in body["members"]}
    x, y = members["X"], members["Y"]
    # 60, not 70: the last `good` sample no longer vouches for 10 s after the End.
    assert (x["status"], x["reason"], x["presence_seconds"], x["verified_seconds"]) == (
        "partial",
        "outage",
        length,
        60,
    )
    assert (y["status"], y["verified_seconds"]) == ("present", length)  # the main venue's rule
    assert {v["code"]: v["up_seconds"] for v in body["venues"]} == {"B": 60, "M": length}
    stored = await _stored(db, training)
    assert stored[:2] == ({"X": 60, "Y": length}, {"B": 60, "M": length})
    # The final `down` arrives after the finalization: finalizing again finds nothing new.
    down = [_sample(ended, "down")]
    await _agent_post(
        client, tokens["B"], "stream-stats", {"session_id": session_id, "samples": down}
    )
    again = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert again.status == 200, await again.text()
    assert await _stored(db, training) == stored
