"""A committee's registration forms (培训登记表) in one document (一党委一专柜): every member's
form of a subtree for a year, read in a few queries for all of them rather than a form's
queries once per member; each form is the one services/archive.registration_form gives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import (
    Attendance,
    Member,
    Organization,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.services.archive import Cabinet, RegistrationForm, cabinet
from server.services.attendance_view import RecordEntry, year_bounds

CHUNK = 500  # members a query names at once (well under any driver's limit on parameters)


async def registration_forms(
    session: AsyncSession, scope: Scope, org_code: str, year: int, tz: ZoneInfo
) -> tuple[Cabinet, list[RegistrationForm]]:
    """The registration form of every member of the organization's subtree for the year, in
    the cabinet's order; outside the scope the organization does not exist (404)."""
    found = await cabinet(session, scope, org_code, year)
    numbers = [line.member_no for line in found.lines]
    ids: dict[str, int] = {}
    paths: dict[str, str] = {}
    entries: dict[int, list[RecordEntry]] = defaultdict(list)
    organizers: dict[str, str] = {}
    start, end = year_bounds(year, tz)
    for chunk in _chunks(numbers):
        members = await session.execute(
            select(Member.member_no, Member.id, Organization.path)
            .join(Organization, Organization.id == Member.org_id)
            .where(Member.member_no.in_(chunk))
        )
        for number, member_id, path in members:
            ids[number], paths[number] = member_id, path
        await _credited(session, [ids[n] for n in chunk], start, end, entries, organizers)
    org_names = await _org_names(session, paths.values())
    codes = {entry.venue for found_entries in entries.values() for entry in found_entries}
    venue_names = dict(
        (
            await session.execute(
                select(Venue.code, Venue.name).where(Venue.code.in_(codes - {None}))
            )
        ).all()
    )
    forms = []
    for line in found.lines:
        credited = entries.get(ids[line.member_no], [])
        org_ids = [int(part) for part in paths[line.member_no].strip("/").split("/")]
        forms.append(
            RegistrationForm(
                line,
                tuple(org_names[org_id] for org_id in org_ids if org_id in org_names),
                year,
                credited,
                {e.venue: venue_names[e.venue] for e in credited if e.venue in venue_names},
                {e.session_id: organizers[e.session_id] for e in credited},
            )
        )
    return found, forms


def _chunks(numbers: Sequence[str]) -> Iterator[Sequence[str]]:
    for first in range(0, len(numbers), CHUNK):
        yield numbers[first : first + CHUNK]


async def _credited(
    session: AsyncSession,
    member_ids: list[int],
    start: datetime,
    end: datetime,
    entries: dict[int, list[RecordEntry]],
    organizers: dict[str, str],
) -> None:
    """The members' credited sessions of the year as their yearly record has them
    (services/attendance_view.member_record): by start, another subtree's unaccepted scan left
    out, the venue the record names or else the first the member was seen at."""
    record_venue = (
        select(TrainingRecord.member_id, TrainingRecord.session_id, Venue.code)
        .join(Venue, Venue.id == TrainingRecord.venue_id)
        .where(TrainingRecord.member_id.in_(member_ids))
        .subquery()
    )
    rows = await session.execute(
        select(
            Attendance.member_id,
            TrainingSession.public_id,
            TrainingSession.title,
            TrainingSession.topic_code,
            TrainingSession.starts_at,
            Attendance.credit_hours,
            Attendance.status,
            Attendance.venues,
            Attendance.flags,
            record_venue.c.code,
            Organization.name,
        )
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .join(Organization, Organization.id == TrainingSession.org_id)
        .outerjoin(
            record_venue,
            (record_venue.c.session_id == TrainingSession.id)
            & (record_venue.c.member_id == Attendance.member_id),
        )
        .where(
            Attendance.member_id.in_(member_ids),
            TrainingSession.starts_at >= start,
            TrainingSession.starts_at < end,
        )
        .order_by(Attendance.member_id, TrainingSession.starts_at, TrainingSession.public_id)
    )
    for (
        member_id,
        public_id,
        title,
        topic,
        starts_at,
        hours,
        status,
        seen,
        flags,
        venue,
        org,
    ) in rows:
        if "outside_scope" in flags or hours <= 0:
            continue
        first_seen = sorted(seen)[0] if seen else None
        entries[member_id].append(
            RecordEntry(public_id, title, topic, starts_at, hours, status, venue or first_seen)
        )
        organizers[public_id] = org


async def _org_names(session: AsyncSession, paths: Iterable[str]) -> dict[int, str]:
    """The names of the organizations on the paths: each member's way from the top."""
    ids = {int(part) for path in paths for part in path.strip("/").split("/")}
    rows = await session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    )
    return {org_id: name for org_id, name in rows.all()}
