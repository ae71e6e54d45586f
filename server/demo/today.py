"""Today's session of the demo city: a joint class that is live or starts within minutes, so a
newcomer can check in at a demo agent and broadcast at once. Added when the demo city is built,
and again whenever `hetang demo --if-empty` finds the demo city with no such session (the
history is left as it is)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import Member, Organization, SessionVenue, TrainingSession, User, Venue
from server.db.session import lock_for_audit, write_session
from server.demo import data
from server.domain.attendance import Policy
from server.domain.sessions import RosterLine, SessionFields
from server.services import sessions

LEAD = timedelta(minutes=5)  # from the demo's start to the session's
LENGTH = timedelta(hours=3)
# A session still counts as today's while this much of it is left, or when it starts this soon.
LEFT_AT_LEAST = timedelta(minutes=30)
STARTS_WITHIN = timedelta(minutes=60)
TITLE = "凤阳县党员冬训集中轮训：学习贯彻党的二十届四中全会精神"
TOPIC = "winter-training-fourth-plenum"
ROSTER_ORG = "cz-fy"
MAIN_VENUE = "cz-fy-dx"
BRANCH_VENUES = ("cz-fy-xq-dx", "cz-fy-xxh-sxjd")
ROSTER_SIZE = 240


class TodaysSession(NamedTuple):
    """Today's session as the commands name it; `added` when this call scheduled it."""

    public_id: str
    title: str
    starts_at: datetime
    added: bool


async def is_demo_city(session: AsyncSession) -> bool:
    """True when the database holds the demo city (its city, main venue and operator)."""
    city = await session.scalar(
        select(Organization.name).where(Organization.code == data.CITY_CODE)
    )
    venue = await session.scalar(select(Venue.id).where(Venue.code == MAIN_VENUE))
    operator = await session.scalar(select(User.id).where(User.username == "operator"))
    return city == data.CITY_NAME and venue is not None and operator is not None


async def _current(session: AsyncSession, now: datetime) -> TodaysSession | None:
    """A joint session at the demo venues that is live, or scheduled and starting soon."""
    row = (
        await session.execute(
            select(TrainingSession.public_id, TrainingSession.title, TrainingSession.starts_at)
            .join(Venue, Venue.id == TrainingSession.main_venue_id)
            .where(
                Venue.code == MAIN_VENUE,
                TrainingSession.state.in_(("scheduled", "live")),
                TrainingSession.ends_at > now + LEFT_AT_LEAST,
                TrainingSession.starts_at <= now + STARTS_WITHIN,
                TrainingSession.id.in_(
                    select(SessionVenue.session_id).where(SessionVenue.role == "branch")
                ),
            )
            .order_by(TrainingSession.starts_at)
            .limit(1)
        )
    ).first()
    return None if row is None else TodaysSession(row[0], row[1], row[2], False)


def _start(now: datetime) -> datetime:
    """LEAD from now, on the whole minute."""
    at = now + LEAD
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def schedule_today(session: AsyncSession, rng: random.Random, now: datetime) -> TodaysSession:
    """Today's session: the one there is, or a new one through the sessions service (audited
    as "demo"), with members of 凤阳县 at the county's party school and its two branch rooms."""
    found = await _current(session, now)
    if found is not None:
        return found
    county = select(Organization.path).where(Organization.code == ROSTER_ORG).scalar_subquery()
    rows = (
        await session.execute(
            select(Member.member_no, Organization.code)
            .join(Organization, Member.org_id == Organization.id)
            .where(Organization.path.startswith(county))
            .order_by(Member.member_no)
        )
    ).all()
    chosen = sorted(rng.sample(rows, min(ROSTER_SIZE, len(rows))))
    roster = tuple(RosterLine(no, _venue_of(code)) for no, code in chosen)
    starts = _start(now)
    fields = SessionFields(
        title=TITLE,
        topic_code=TOPIC,
        starts_at=starts,
        ends_at=starts + LENGTH,
        credit_hours=Decimal(3),
        main_venue=MAIN_VENUE,
        branch_venues=BRANCH_VENUES,
        policy=Policy(),
        roster=roster,
    )
    operator = await session.scalar(select(User.id).where(User.username == "operator"))
    view = await sessions.create_session(session, WHOLE_TREE, data.ACTOR, fields, operator)
    return TodaysSession(view.id, TITLE, starts, True)


def _venue_of(org_code: str) -> str:
    """A 凤阳县 member's room: their town's, when it has one; else the county school."""
    if org_code.startswith("cz-fy-xq-"):
        return "cz-fy-xq-dx"
    if org_code.startswith("cz-fy-xxh-"):
        return "cz-fy-xxh-sxjd"
    return MAIN_VENUE


async def ensure_today(
    factory: async_sessionmaker[AsyncSession], now: datetime
) -> TodaysSession | None:
    """In the demo city, today's session (scheduling one when there is none); None elsewhere."""
    async with write_session(factory) as session:
        await lock_for_audit(session)
        if not await is_demo_city(session):
            return None
        return await schedule_today(session, random.Random(now.toordinal()), now)
