"""What happened at the demo city's past sessions: members scanned in and out at their venues
(most come to nearly every class, some to every other one, a few never; of those who come most
are on time, some late, some leave early), every branch agent reported its stream every 5 s
(one branch lost its picture for 45 minutes of the city's first young-cadre run), and the
sessions were finalized through the workflow — those held over three weeks ago also approved —
so that the monthly report, the members' records and the committee cabinets look like a city's."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import WHOLE_TREE
from server.db.bulk import bulk_insert
from server.db.models import (
    CheckIn,
    Member,
    RosterEntry,
    SessionVenue,
    StreamSample,
    TrainingSession,
)
from server.services import workflow

STATS_S = 5
OUTAGE = (timedelta(minutes=60), timedelta(minutes=105))  # into the first session, one branch
LATE, SHORT, NO_OUT = 0.04, 0.07, 0.45  # of those who come: cumulative shares, "no scan out"
# How often a member misses a class: most hardly ever, some every other time, a few always
# (shares of the members, and the chance they miss any one class).
HABITS = ((0.03, 1.0), (0.11, 0.5), (0.86, 0.03))
APPROVED_AFTER = timedelta(days=21)  # older sessions have been approved by now


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _habits(rng: random.Random, member_ids: list[int]) -> dict[int, float]:
    """Each member's chance of missing a class, drawn by HABITS."""
    shares, misses = zip(*HABITS, strict=True)
    return dict(
        zip(member_ids, rng.choices(misses, weights=shares, k=len(member_ids)), strict=True)
    )


def _scans(
    rng: random.Random, training: TrainingSession, member_id: int, venue_id: int, miss: float
) -> list[dict[str, Any]]:
    """One member's scans at their venue: the kinds of day a branch venue sees."""
    starts, ends = training.starts_at, training.ends_at
    if rng.random() < miss:
        return []
    roll = rng.random()
    arrive = starts - timedelta(seconds=rng.randint(0, 15 * 60))
    leave: datetime | None = ends + timedelta(seconds=rng.randint(0, 10 * 60))
    if roll < LATE:
        arrive = starts + timedelta(seconds=rng.randint(20 * 60, 50 * 60))
    elif roll < SHORT:
        leave = ends - timedelta(seconds=rng.randint(50 * 60, 90 * 60))
    elif rng.random() < NO_OUT:
        leave = None  # sign-in-only: presence runs to the end
    scans = [("in", arrive)] + ([("out", leave)] if leave is not None else [])
    return [
        {
            "event_id": _event_id(rng),
            "session_id": training.id,
            "venue_id": venue_id,
            "member_id": member_id,
            "kind": kind,
            "source": "scanner",
            "at_raw": at,
            "at": at,
            "received_at": at + timedelta(seconds=rng.randint(1, 4)),
            "after_approval": False,
        }
        for kind, at in scans
    ]


def _samples(
    rng: random.Random, training: TrainingSession, venue_id: int, outage: bool
) -> list[dict[str, Any]]:
    """A branch agent's readings every STATS_S seconds through the session."""
    rows = []
    at, step = training.starts_at, timedelta(seconds=STATS_S)
    down_from, down_to = (training.starts_at + OUTAGE[0], training.starts_at + OUTAGE[1])
    while at < training.ends_at:
        down = outage and down_from <= at < down_to
        rows.append(
            {
                "session_id": training.id,
                "venue_id": venue_id,
                "at": at,
                "state": "down" if down else "good",
                "bitrate_kbps": 0.0 if down else round(rng.uniform(950, 1050), 1),
                "fps": 0.0 if down else round(rng.uniform(29.5, 30.0), 1),
                "loss_pct": 0.0 if down else round(rng.uniform(0, 0.6), 2),
                "jitter_ms": 0.0 if down else round(rng.uniform(2, 9), 1),
                "freezes": 0,
                "frames_decoded": 0 if down else STATS_S * 30,
                "received_at": at + timedelta(seconds=1),
            }
        )
        at += step
    return rows


async def play_past_sessions(
    session: AsyncSession,
    rng: random.Random,
    tz: ZoneInfo,
    now: datetime,
    actor: str,
    progress: Callable[[str], None],
    outage_title: str | None = None,
) -> None:
    """Scans and stream readings for every session that has ended, then finalize them all and
    approve those held more than three weeks ago. One branch of the first session titled
    `outage_title` (of the oldest session, when None) loses its picture for 45 minutes."""
    past = (
        await session.scalars(
            select(TrainingSession)
            .where(TrainingSession.state == "ended")
            .order_by(TrainingSession.starts_at, TrainingSession.id)
        )
    ).all()
    habits = _habits(rng, list(await session.scalars(select(Member.id).order_by(Member.id))))
    titles = [training.title for training in past]
    outage_at = titles.index(outage_title) if outage_title in titles else 0
    scans = readings = 0
    for index, training in enumerate(past):
        roster = (
            await session.execute(
                select(RosterEntry.member_id, RosterEntry.venue_id)
                .where(RosterEntry.session_id == training.id)
                .order_by(RosterEntry.member_id)
            )
        ).all()
        rows = [
            row
            for member, venue in roster
            for row in _scans(rng, training, member, venue, habits[member])
        ]
        branches = (
            await session.scalars(
                select(SessionVenue.venue_id)
                .where(SessionVenue.session_id == training.id, SessionVenue.role == "branch")
                .order_by(SessionVenue.venue_id)
            )
        ).all()
        samples = [
            row
            for number, venue in enumerate(branches)
            for row in _samples(rng, training, venue, outage=index == outage_at and number == 1)
        ]
        await bulk_insert(session, CheckIn, rows)
        await bulk_insert(session, StreamSample, samples)
        scans, readings = scans + len(rows), readings + len(samples)
        # Finalized now, as the seed runs: the audit trail keeps its order of time.
        await workflow.act(session, WHOLE_TREE, actor, training.public_id, "finalize", tz, now)
    approved = [training for training in past if training.ends_at <= now - APPROVED_AFTER]
    for training in approved or past[:1]:
        await workflow.act(session, WHOLE_TREE, actor, training.public_id, "approve", tz, now)
    progress(
        f"past sessions: {len(past)} finalized ({len(approved or past[:1])} approved) "
        f"with {scans} scans and {readings} stream readings"
    )
