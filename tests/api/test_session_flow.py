"""A session from scheduling to approval through the real API: the worked example of
ATTENDANCE.md arrives as agent check-ins and stream samples, is finalized and credited."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    AuditEntry,
    CheckIn,
    QuarantinedCheckIn,
    StreamSample,
    TrainingSession,
    User,
)
from tests.support.sessions import at, schedule_worked_example
from tests.support.stream_stats import post_samples
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
TZ8 = timedelta(hours=8)
DAY = datetime(2026, 11, 20, tzinfo=UTC)
S = DAY + timedelta(hours=1)  # 09:00 in Shanghai
E = S + timedelta(hours=3)


async def test_the_creator_is_remembered(client: Any, world: World, db: Db) -> None:
    session_id, _ = await schedule_worked_example(client, world)
    async with db() as session:
        creator = await session.scalar(
            select(User.username)
            .join(TrainingSession, TrainingSession.created_by_id == User.id)
            .where(TrainingSession.public_id == session_id)
        )
    assert creator == "operator-a"


def event(session_id: str, member: str, kind: str, when: str, **extra: Any) -> dict[str, Any]:
    """One check-in event as an agent makes it."""
    return {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "member_no": member,
        "kind": kind,
        "at": when,
        "source": "scanner",
        **extra,
    }


async def post_events(client: Any, token: str, events: list[dict[str, Any]]) -> list[Any]:
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {token}"},
        json={"sent_at": datetime.now(UTC).isoformat(), "events": events},
    )
    assert answer.status == 200, await answer.text()
    return list((await answer.json())["results"])


async def _samples(client: Any, token: str, session_id: str) -> None:
    start = datetime(2026, 11, 20, 9, 0)
    rows = []
    for step in range(0, 3 * 3600, 5):
        moment = start + timedelta(seconds=step)
        down = datetime(2026, 11, 20, 10, 0) <= moment < datetime(2026, 11, 20, 10, 20)
        rows.append(
            {
                "at": moment.isoformat() + "+08:00",
                "state": "down" if down else "good",
                "bitrate_kbps": 900.0,
                "fps": 30,
                "loss_pct": 0.1,
                "jitter_ms": 4.0,
                "freezes": 0,
                "frames_decoded": step * 30,
            }
        )
    await post_samples(client, token, session_id, rows)


async def test_worked_example_end_to_end(client: Any, world: World, db: Db) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    results = await post_events(
        client,
        tokens["B1"],
        [
            event(session_id, "A", "in", at(8, 50)),
            event(session_id, "C", "in", at(9, 25)),
            event(session_id, "G", "in", at(9, 45)),
            event(session_id, "F", "in", at(9, 0)),
        ],
    )
    assert [r["status"] for r in results] == ["accepted"] * 4
    await post_events(
        client,
        tokens["B2"],
        [event(session_id, "E", "in", at(8, 55)), event(session_id, "F", "in", at(9, 5))],
    )
    await post_events(client, tokens["M"], [event(session_id, "K", "in", at(9, 0))])
    await _samples(client, tokens["B1"], session_id)
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    early = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert early.status == 409  # scheduled sessions cannot be finalized
    for action, who in (("start", operator), ("end", operator), ("finalize", reviewer)):
        answer = await client.post(f"/api/v1/sessions/{session_id}/{action}", headers=who)
        assert answer.status == 200, await answer.text()
    answer = await client.get(f"/api/v1/sessions/{session_id}/attendance", headers=reviewer)
    body = await answer.json()
    members = {m["member_no"]: m for m in body["members"]}
    assert list(members) == sorted(members)
    expected = {
        "A": ("present", None, 10800, 9600, 3, []),
        "C": ("partial", "outage", 9300, 8100, 0, ["late"]),
        "G": ("partial", "short_stay", 8100, 6900, 0, ["late"]),
        "E": ("partial", "outage", 10800, 0, 0, []),
        "F": ("present", None, 10800, 9600, 3, ["conflict", "wrong_venue"]),
        "K": ("present", None, 10800, 10800, 3, ["walk_in"]),
    }
    for number, (status, reason, presence, verified, credit, flags) in expected.items():
        line = members[number]
        assert (
            line["status"],
            line["reason"],
            line["presence_seconds"],
            line["verified_seconds"],
            line["credit_hours"],
            line["flags"],
        ) == (status, reason, presence, verified, credit, flags), number
    assert members["K"]["assigned_venue"] is None and members["F"]["venues"] == ["B1", "B2"]
    assert body["summary"] == {
        "expected": 5,
        "present": 3,
        "partial": 3,
        "absent": 0,
        "walk_in": 1,
        "conflict": 1,
    }
    venues = {v["code"]: v for v in body["venues"]}
    assert venues["M"]["up_seconds"] == 10800 and venues["B2"]["up_seconds"] == 0
    assert venues["B1"]["up_seconds"] == 10800 - 1200
    assert venues["B1"]["expected"] == 4 and venues["B1"]["checked_in"] == 4
    assert venues["B2"]["checked_in"] == 2  # E, and F who scanned at both
    record = await client.get("/api/v1/members/A/record?year=2026", headers=reviewer)
    assert (await record.json())["earned_hours"] == 3
    # Re-finalizing with nothing new changes nothing, not even the audit trail.
    async with db() as session:
        audit_before = await session.scalar(select(func.count()).select_from(AuditEntry))
    again = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert again.status == 200
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == audit_before
    # Approval locks: a late check-in is kept, marked, and changes nothing.
    assert (
        await client.post(f"/api/v1/sessions/{session_id}/approve", headers=reviewer)
    ).status == 200
    late = await post_events(client, tokens["B2"], [event(session_id, "G", "in", at(9, 1))])
    assert late[0]["status"] == "accepted"
    async with db() as session:
        marked = await session.scalar(
            select(func.count()).select_from(CheckIn).where(CheckIn.after_approval.is_(True))
        )
    assert marked == 1
    assert (
        await client.post(f"/api/v1/sessions/{session_id}/approve", headers=reviewer)
    ).status == 409
    # An admin reopens it: the kept check-in now counts (G was also at B2 from 09:01).
    assert (
        await client.post(f"/api/v1/sessions/{session_id}/reopen", headers=reviewer)
    ).status == 403
    reopened = await client.post(
        f"/api/v1/sessions/{session_id}/reopen", headers=world.auth("admin", "a")
    )
    assert reopened.status == 200 and (await reopened.json())["state"] == "finalized"
    answer = await client.get(f"/api/v1/sessions/{session_id}/attendance", headers=reviewer)
    g = next(m for m in (await answer.json())["members"] if m["member_no"] == "G")
    assert (g["status"], g["reason"], g["venues"]) == ("partial", "outage", ["B1", "B2"])
    assert "wrong_venue" in g["flags"]


async def test_duplicates_rejections_and_quarantine(client: Any, world: World, db: Db) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    first = event(session_id, "A", "in", at(9, 0))
    reused = {**first, "kind": "out"}
    batch = [
        first,
        dict(first),
        reused,
        event(session_id, "nobody", "in", at(9, 0)),
        event("no-such-session", "A", "in", at(9, 0)),
        event(session_id, "A", "in", at(14, 0)),
        {"event_id": "not-a-uuid", "session_id": session_id},
        event(session_id, "A", "in", at(9, 1), member_no=None, card_code="card-A"),
    ]
    results = await post_events(client, tokens["B1"], batch)
    assert [(r["status"], r["reason"]) for r in results] == [
        ("accepted", None),
        ("duplicate", None),
        ("rejected", "event_id_reused"),
        ("rejected", "unknown_member"),
        ("rejected", "unknown_session"),
        ("rejected", "outside_window"),
        ("rejected", "invalid"),
        ("accepted", None),
    ]
    again = await post_events(client, tokens["B1"], batch[:1])
    assert again[0]["status"] == "duplicate"
    other_venue = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "a"),
        json={"code": "X", "name": "外会场", "org_code": "a"},
    )
    outsider = (await other_venue.json())["token"]
    assert (await post_events(client, outsider, [event(session_id, "A", "in", at(9, 0))]))[0][
        "reason"
    ] == "venue_not_in_session"
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(CheckIn)) == 2
        reasons = sorted((await session.execute(select(QuarantinedCheckIn.reason))).scalars())
    assert reasons == [
        "event_id_reused",
        "invalid",
        "outside_window",
        "unknown_member",
        "unknown_session",
        "venue_not_in_session",
    ]
    too_many = [event(session_id, "A", "in", at(9, 0)) for _ in range(501)]
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {tokens['B1']}"},
        json={"sent_at": datetime.now(UTC).isoformat(), "events": too_many},
    )
    assert answer.status == 413


async def test_clock_correction(client: Any, world: World, db: Db) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    behind = datetime.now(UTC) - timedelta(minutes=10)  # the agent's clock is 10 min slow
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {tokens['B1']}"},
        json={"sent_at": behind.isoformat(), "events": [event(session_id, "A", "in", at(8, 55))]},
    )
    assert (await answer.json())["results"][0]["status"] == "accepted"
    async with db() as session:
        row = (await session.execute(select(CheckIn))).scalar_one()
    shift = (row.at - row.at_raw).total_seconds()
    assert 598 <= shift <= 602 and row.at.microsecond == 0


async def test_one_batch_fifty_times_at_once(client: Any, world: World, db: Db) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    batch = [
        event(session_id, member, "in", at(9, minute))
        for minute, member in enumerate(("A", "C", "G", "F"))
    ]
    answers = await asyncio.gather(*(post_events(client, tokens["B1"], batch) for _ in range(50)))
    statuses = [r["status"] for results in answers for r in results]
    assert statuses.count("accepted") == 4 and statuses.count("duplicate") == 196
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(CheckIn)) == 4


async def test_schedule_etag_ics_and_heartbeat(client: Any, world: World, db: Db) -> None:
    now = datetime.now(UTC)
    admin = world.auth("admin", "a")
    token = (
        await (
            await client.post(
                "/api/v1/venues",
                headers=admin,
                json={"code": "V", "name": "西泉镇党校", "org_code": "a1"},
            )
        ).json()
    )["token"]
    await client.post(
        "/api/v1/members",
        headers=admin,
        json={"member_no": "P1", "name": "张三", "org_code": "a1", "category": "ordinary"},
    )
    created = await client.post(
        "/api/v1/sessions",
        headers=admin,
        json={
            "title": "政治理论首课, 第一讲",
            "topic_code": "ZZ-1",
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=1, hours=2)).isoformat(),
            "credit_hours": 1.5,
            "main_venue": "V",
            "roster": [{"member_no": "P1", "venue": "V"}],
        },
    )
    assert created.status == 201, await created.text()
    agent = {"Authorization": f"Bearer {token}"}
    first = await client.get("/api/v1/agent/schedule", headers=agent)
    body = await first.json()
    assert body["sessions"][0]["roster"] == [{"member_no": "P1", "name": "张三", "card_code": None}]
    assert body["sessions"][0]["role"] == "main"
    etag = first.headers["ETag"]
    second = await client.get("/api/v1/agent/schedule", headers={**agent, "If-None-Match": etag})
    assert second.status == 304
    ics = await client.get("/api/v1/agent/schedule.ics", headers=agent)
    calendar = icalendar.Calendar.from_ical(await ics.read())
    events = [c for c in calendar.walk() if c.name == "VEVENT"]
    assert str(events[0]["SUMMARY"]) == "政治理论首课, 第一讲"
    beat = await client.post(
        "/api/v1/agent/heartbeat",
        headers=agent,
        json={"state": "idle", "session_id": None, "queue_depth": 3, "agent_version": "0.1.0"},
    )
    assert beat.status == 200 and (await beat.json())["commands"] == []
    bad = await client.post(
        "/api/v1/agent/heartbeat",
        headers=agent,
        json={"state": "dancing", "session_id": None, "queue_depth": -1, "agent_version": "0.1.0"},
    )
    assert bad.status == 422
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(StreamSample)) == 0


async def test_a_scanned_member_number_sent_as_a_card_is_recognized(
    client: Any, world: World, db: Db
) -> None:
    session_id, tokens = await schedule_worked_example(client, world)
    walk_in = event(session_id, "K", "in", at(9, 0), member_no=None, card_code="K")
    results = await post_events(client, tokens["M"], [walk_in])
    assert results[0]["status"] == "accepted"
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(CheckIn)) == 1
