"""The demo city as a newcomer meets it: a year of held classes whose monthly report looks like
a real city's (most members meet the requirement, some fall short, a few never came), and a
session that is live or starts within minutes, which the demo agents follow, kept there when
the demo is started again on the same database."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import (
    Attendance,
    Member,
    SessionVenue,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.db.session import read_session
from server.demo import today as demo_today
from server.demo.agents import pick_and_rotate
from server.demo.city import seed_demo
from server.domain.reports import Month, month_of
from server.services import audit, reports
from server.services.clock import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_a_year_of_history_gives_a_real_citys_report(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await seed_demo(db, lambda _: None)
    now = utcnow()
    current = month_of(now, SHANGHAI)
    reported = current.previous()  # the month the report page opens on
    async with read_session(db) as session:
        figures = (await reports.monthly(session, WHOLE_TREE, "cz", reported, SHANGHAI)).own_json()
        held_by_month: list[int] = []
        month = current
        for _ in range(12):
            month = month.previous()
            past = await reports.monthly(session, WHOLE_TREE, "cz", month, SHANGHAI)
            held_by_month.append(past.sessions_held)
        states = Counter(
            (
                state,
                ends_at <= now - timedelta(days=21),
            )
            for state, ends_at in (
                await session.execute(select(TrainingSession.state, TrainingSession.ends_at))
            ).all()
        )
        # What was stored: each member's credited hours in the reported month's year.
        year_starts, _ = Month(reported.year, 1).bounds(SHANGHAI)
        _, reported_ends = reported.bounds(SHANGHAI)
        hours = dict(
            (
                await session.execute(
                    select(TrainingRecord.member_id, func.sum(TrainingSession.credit_hours))
                    .join(TrainingSession, TrainingSession.id == TrainingRecord.session_id)
                    .where(
                        TrainingSession.starts_at >= year_starts,
                        TrainingSession.starts_at < reported_ends,
                    )
                    .group_by(TrainingRecord.member_id)
                )
            ).all()
        )
        members = (await session.execute(select(Member.id, Member.category))).all()
        results = Counter((await session.scalars(select(Attendance.status))).all())
        assert (await audit.verify(session)).ok
    total = figures["members_total"]
    assert total == 3000
    # Every month of the last year had its classes: every area's study and the leaders' class.
    assert min(held_by_month) >= 10, held_by_month
    # Most members trained this year, a few never did; some, not all, are below the requirement.
    assert 85 <= figures["coverage_ytd_pct"] <= 99.5, figures
    assert 0.01 * total <= figures["untrained_ytd"] <= 0.08 * total, figures
    assert 0.02 * total <= figures["below_requirement"] <= 0.35 * total, figures
    assert figures["below_requirement"] > figures["untrained_ytd"]
    assert figures["sessions_held"] >= 10 and figures["person_times"] > 0.5 * total
    # The report agrees with the stored records: nobody without a record counts as trained.
    assert figures["members_trained_ytd"] == len(hours)
    met = sum(
        1
        for member_id, category in members
        if hours.get(member_id, 0) * 12 >= (32 if category == "ordinary" else 56) * reported.month
    )
    assert met == total - figures["below_requirement"]
    assert results["present"] > 3 * (results["absent"] + results["partial"])
    # Held more than three weeks ago: approved; the recent ones wait for the reviewer.
    assert states[("finalized", True)] == 0 and states[("approved", True)] >= 100
    assert states[("finalized", False)] >= 1


async def test_todays_session_is_there_and_followed_by_the_agents(
    db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    built = utcnow()
    lines = await seed_demo(db, lambda _: None, history_months=0)
    async with read_session(db) as session:
        today = await demo_today.schedule_today(session, random.Random(0), utcnow())
        assert not today.added  # found, not made again
        training = (
            await session.execute(
                select(TrainingSession).where(TrainingSession.public_id == today.public_id)
            )
        ).scalar_one()
        branches = (
            await session.scalars(
                select(Venue.code)
                .join(SessionVenue, SessionVenue.venue_id == Venue.id)
                .where(SessionVenue.session_id == training.id, SessionVenue.role == "branch")
                .order_by(Venue.code)
            )
        ).all()
        held = await _held(session)
    assert training.state == "scheduled" and training.title == demo_today.TITLE
    assert built < training.starts_at <= built + timedelta(minutes=10)
    assert tuple(branches) == demo_today.BRANCH_VENUES
    assert any(today.public_id in line for line in lines)

    # The agents follow it: its branch venues, whatever else is scheduled.
    public_id, agents = await pick_and_rotate(db, 2, tmp_path)
    assert public_id == today.public_id
    assert [agent.venue for agent in agents] == list(demo_today.BRANCH_VENUES)

    # Started again the same hour: the same session. Hours later: a new one, history untouched.
    again = await demo_today.ensure_today(db, utcnow())
    assert again is not None and again.public_id == today.public_id and not again.added
    later = utcnow() + timedelta(hours=4)
    moved = await demo_today.ensure_today(db, later)
    assert moved is not None and moved.added and moved.public_id != today.public_id
    assert later < moved.starts_at <= later + timedelta(minutes=10)
    async with read_session(db) as session:
        assert await _held(session) == held
        assert (await audit.verify(session)).ok


async def test_no_session_is_added_to_a_database_that_is_not_the_demo(
    db: async_sessionmaker[AsyncSession],
) -> None:
    assert await demo_today.ensure_today(db, datetime.now(SHANGHAI)) is None
    async with read_session(db) as session:
        assert await session.scalar(select(func.count()).select_from(TrainingSession)) == 0


async def _held(session: AsyncSession) -> tuple[int, int, int]:
    """How many finalized or approved sessions, results and records there are."""
    counts = []
    for query in (
        select(func.count())
        .select_from(TrainingSession)
        .where(TrainingSession.state.in_(("finalized", "approved"))),
        select(func.count()).select_from(Attendance),
        select(func.count()).select_from(TrainingRecord),
    ):
        counts.append(await session.scalar(query) or 0)
    return counts[0], counts[1], counts[2]
