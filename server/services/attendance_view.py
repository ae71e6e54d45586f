"""Reading finalized attendance: a session's combined result and a member's yearly record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.base import Hours
from server.db.models import (
    Attendance,
    Member,
    Organization,
    SessionVenue,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.domain.members import REQUIRED_HOURS
from server.domain.vocabulary import HELD_STATES
from server.errors import Conflict
from server.services.members import get_member
from server.services.session_views import load_visible

SUMMARY_KEYS = ("expected", "present", "partial", "absent", "walk_in", "conflict")


@dataclass(frozen=True)
class MemberLine:
    """One member's combined result."""

    member_no: str
    name: str
    org_code: str
    org_name: str
    assigned_venue: str | None
    venues: list[str]
    status: str
    reason: str | None
    presence_seconds: int
    verified_seconds: int
    credit_hours: Decimal
    flags: list[str]


@dataclass(frozen=True)
class VenueLine:
    """One venue's part in the result."""

    code: str
    name: str
    role: str
    expected: int
    checked_in: int
    up_seconds: int


@dataclass(frozen=True)
class SessionAttendance:
    """The whole answer of GET sessions/{id}/attendance."""

    id: str
    title: str
    state: str
    starts_at: datetime
    ends_at: datetime
    credit_hours: Decimal
    summary: dict[str, int]
    venues: list[VenueLine]
    members: list[MemberLine]


async def session_attendance(
    session: AsyncSession, scope: Scope, public_id: str, venue_scope: Scope | None = None
) -> SessionAttendance:
    """The finalized result; members outside the scope are left out of a joint session's list.
    With a `venue_scope` only its venues and the members assigned to or seen at them remain."""
    training = await load_visible(session, scope, public_id)
    if training.state not in HELD_STATES:
        raise Conflict("The session is not finalized yet; attendance appears after it is.")
    venue_rows = (
        await session.execute(
            select(
                Venue.id,
                Venue.code,
                Venue.name,
                SessionVenue.role,
                SessionVenue.expected,
                SessionVenue.checked_in,
                SessionVenue.up_seconds,
                Organization.path,
            )
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .join(Organization, Organization.id == Venue.org_id)
            .where(SessionVenue.session_id == training.id)
            .order_by(Venue.code)
        )
    ).all()
    if venue_scope is not None:
        venue_rows = [row for row in venue_rows if venue_scope.covers(row[-1])]
    code_of = {row[0]: row[1] for row in venue_rows}
    query = (
        select(
            Attendance,
            Member.member_no,
            Member.name,
            Organization.code,
            Organization.name,
            Organization.path,
        )
        .join(Member, Member.id == Attendance.member_id)
        .join(Organization, Organization.id == Member.org_id)
        .where(Attendance.session_id == training.id)
        .order_by(Member.member_no)
    )
    members = [
        MemberLine(
            number,
            name,
            org_code,
            org_name,
            code_of.get(row.assigned_venue_id or -1),
            sorted(row.venues),
            row.status,
            row.reason,
            row.presence_seconds,
            row.verified_seconds,
            row.credit_hours,
            sorted(row.flags),
        )
        for row, number, name, org_code, org_name, path in (await session.execute(query)).all()
        if scope.covers(path) and (venue_scope is None or _at_any(row, code_of))
    ]
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    for line in members:
        summary[line.status] += 1
        summary["expected"] += line.assigned_venue is not None
        summary["walk_in"] += "walk_in" in line.flags
        summary["conflict"] += "conflict" in line.flags
    venues = [
        VenueLine(code, name, role, expected or 0, checked_in or 0, up or 0)
        for _, code, name, role, expected, checked_in, up, _ in venue_rows
    ]
    return SessionAttendance(
        training.public_id,
        training.title,
        training.state,
        training.starts_at,
        training.ends_at,
        training.credit_hours,
        summary,
        venues,
        members,
    )


def _at_any(row: Attendance, code_of: dict[int, str]) -> bool:
    """Whether the member was assigned to, or checked in at, one of these venues."""
    return row.assigned_venue_id in code_of or not set(row.venues).isdisjoint(code_of.values())


@dataclass(frozen=True)
class RecordEntry:
    """One session in a member's yearly record."""

    session_id: str
    title: str
    topic_code: str
    starts_at: datetime
    credit_hours: Decimal
    status: str
    venue: str | None
    # A make-up session (补学): the title and id of the lesson it replayed.
    makeup_of: str | None = None
    makeup_of_id: str | None = None


@dataclass(frozen=True)
class MemberRecord:
    """A member's training record (培训档案) for one year."""

    member_no: str
    name: str
    category: str
    year: int
    required_hours: Decimal
    earned_hours: Decimal
    entries: list[RecordEntry]


def year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """January 1 to January 1 in the local time zone, as UTC."""
    start = datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)
    return start, datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)


def _lesson(
    lessons: dict[int, tuple[str, str]], replay_of_id: int | None
) -> tuple[str | None, str | None]:
    """(title, id) of the lesson a make-up replayed; (None, None) for a live lesson."""
    if replay_of_id is None or replay_of_id not in lessons:
        return None, None
    public_id, title = lessons[replay_of_id]
    return title, public_id


async def member_record(
    session: AsyncSession, scope: Scope, member_no: str, year: int, tz: ZoneInfo
) -> MemberRecord:
    """Every finalized session of the year with the member's status, and the credited total."""
    view = await get_member(session, scope, member_no)
    member_id = await session.scalar(select(Member.id).where(Member.member_no == member_no))
    start, end = year_bounds(year, tz)
    record_venue = (
        select(TrainingRecord.session_id, Venue.code)
        .join(Venue, Venue.id == TrainingRecord.venue_id)
        .where(TrainingRecord.member_id == member_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(TrainingSession, Attendance, record_venue.c.code)
            .join(Attendance, Attendance.session_id == TrainingSession.id)
            .outerjoin(record_venue, record_venue.c.session_id == TrainingSession.id)
            .where(
                Attendance.member_id == member_id,
                TrainingSession.starts_at >= start,
                TrainingSession.starts_at < end,
            )
            .order_by(TrainingSession.starts_at, TrainingSession.public_id)
        )
    ).all()
    replayed = {t.replay_of_id for t, _, _ in rows if t.replay_of_id is not None}
    lessons = {
        lesson_id: (public_id, title)
        for lesson_id, public_id, title in await session.execute(
            select(TrainingSession.id, TrainingSession.public_id, TrainingSession.title).where(
                TrainingSession.id.in_(replayed)
            )
        )
    }
    entries = [
        RecordEntry(
            training.public_id,
            training.title,
            training.topic_code,
            training.starts_at,
            row.credit_hours,
            row.status,
            venue or (sorted(row.venues)[0] if row.venues else None),
            *_lesson(lessons, training.replay_of_id),
        )
        for training, row, venue in rows
        # Another subtree's scan of this member is no part of their record until accepted.
        if "outside_scope" not in row.flags
    ]
    earned = await session.scalar(
        select(func.coalesce(func.sum(TrainingRecord.credit_hours), 0, type_=Hours())).where(
            TrainingRecord.member_id == member_id, TrainingRecord.year == year
        )
    )
    return MemberRecord(
        view.member_no,
        view.name,
        view.category,
        year,
        REQUIRED_HOURS[view.category],
        earned or Decimal(0),
        entries,
    )
