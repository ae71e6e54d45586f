"""Make-up sessions (补学) from a recording: which session a make-up replays, and its default
roster, the original's make-up list (补训名单: absent or partial members)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import Scope
from server.db.models import (
    Attendance,
    BroadcastSpan,
    Member,
    Organization,
    SessionVenue,
    TrainingSession,
    Venue,
)
from server.domain.sessions import RosterLine
from server.domain.vocabulary import BROADCASTABLE_STATES
from server.errors import Invalid, NotFound
from server.services.recordings import playable
from server.services.session_views import load_visible

MAKEUP_STATUSES = ("absent", "partial")


@dataclass(frozen=True)
class DueReplay:
    """A make-up session whose time has come, with its venues and the recording it plays."""

    public_id: str
    state: str
    venue_codes: tuple[str, ...]
    file_name: str


async def due_replays(session: AsyncSession, now: datetime) -> list[DueReplay]:
    """Make-up sessions scheduled or live within their window that have never been on air (one
    an operator ended stays off) and whose recording is still there: the clock plays them."""
    on_air_before = select(BroadcastSpan.session_id)
    rows = (
        await session.scalars(
            select(TrainingSession).where(
                TrainingSession.replay_of_id.is_not(None),
                TrainingSession.state.in_(BROADCASTABLE_STATES),
                TrainingSession.starts_at <= now,
                TrainingSession.ends_at > now,
                TrainingSession.id.not_in(on_air_before),
            )
        )
    ).all()
    due = []
    for training in rows:
        assert training.replay_of_id is not None
        name = await playable(session, training.replay_of_id)
        if name is not None:
            codes = await session.scalars(
                select(Venue.code)
                .join(SessionVenue, SessionVenue.venue_id == Venue.id)
                .where(SessionVenue.session_id == training.id)
                .order_by(Venue.code)
            )
            due.append(DueReplay(training.public_id, training.state, tuple(codes), name))
    return due


async def original_of(session: AsyncSession, scope: Scope, public_id: str) -> TrainingSession:
    """The session a make-up replays: one the caller sees, with a recording to play (422 naming
    replay_of otherwise)."""
    try:
        original = await load_visible(session, scope, public_id)
    except NotFound:
        raise Invalid(
            "No session {id} to replay.", id=public_id, fields={"replay_of": "is not a session"}
        ) from None
    if await playable(session, original.id) is None:
        raise Invalid(
            "Session {id} has no recording to replay.",
            id=public_id,
            fields={"replay_of": "has no recording"},
        )
    return original


def check_topic(original: TrainingSession, topic_code: str) -> None:
    """A make-up credits the lesson it replays: the same topic, so the repeat rule credits a
    member once for the lesson and its make-up (422 naming topic_code otherwise)."""
    if topic_code != original.topic_code:
        raise Invalid(
            "A make-up session credits the lesson it replays, so its topic code must be "
            "that lesson's: {topic}.",
            topic=original.topic_code,
            fields={"topic_code": "must be the replayed lesson's topic"},
        )


async def makeup_roster(
    session: AsyncSession,
    scope: Scope,
    original: TrainingSession,
    main: str,
    branches: tuple[str, ...],
) -> tuple[RosterLine, ...]:
    """The original's absent and partial members in the caller's subtree, each at the venue
    they were assigned to when it is one of the make-up's, otherwise at its first branch venue
    (or its main venue)."""
    member_org = aliased(Organization)
    rows = await session.execute(
        select(Member.member_no, Venue.code, member_org.path)
        .select_from(Attendance)
        .join(Member, Member.id == Attendance.member_id)
        .join(member_org, member_org.id == Member.org_id)
        .outerjoin(Venue, Venue.id == Attendance.assigned_venue_id)
        .where(Attendance.session_id == original.id, Attendance.status.in_(MAKEUP_STATUSES))
        .order_by(Member.member_no)
    )
    venues = {main, *branches}
    fallback = branches[0] if branches else main
    return tuple(
        RosterLine(number, code if code in venues else fallback)
        for number, code, path in rows
        if scope.covers(path)
    )
