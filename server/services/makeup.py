"""Make-up sessions (补学) from a recording: which session a make-up replays, and its default
roster, the original's make-up list (补训名单: absent or partial members)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import Scope
from server.db.models import Attendance, Member, Organization, TrainingSession, Venue
from server.domain.sessions import RosterLine
from server.errors import Invalid, NotFound
from server.services.recordings import playable
from server.services.session_views import load_visible

MAKEUP_STATUSES = ("absent", "partial")


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
