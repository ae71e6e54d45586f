"""The training archive (培训档案): a member's registration form (培训登记表) for a year, and
the committee cabinet (一党委一专柜): every member of a subtree with hours earned against the
requirement, from one grouped query."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.base import Hours
from server.db.models import Member, Organization, TrainingRecord, TrainingSession, Venue
from server.domain.archive import ArchiveLine, CabinetSummary, cabinet_summary
from server.domain.members import REQUIRED_HOURS
from server.services.attendance_view import RecordEntry, member_record
from server.services.organizations import get_org, tree_sort_key


@dataclass(frozen=True)
class RegistrationForm:
    """What the registration form (培训登记表) of a member and a year shows: the member's line
    as the cabinet has it, where their organization sits, and what was credited."""

    line: ArchiveLine
    org_path: tuple[str, ...]  # names, from the top of the tree to the member's organization
    year: int
    entries: list[RecordEntry]  # the credited sessions of the year, by start
    venue_names: dict[str, str]  # the entries' venues: code → name, as the form prints them
    # The entries' organizers: session id → organization name (a topic code is a key for the
    # once-a-year rule, not something a form names).
    organizers: dict[str, str]


async def registration_form(
    session: AsyncSession, scope: Scope, member_no: str, year: int, tz: ZoneInfo
) -> RegistrationForm:
    """The member's credited sessions of the year and the total (their yearly record, of which
    only what was credited goes on the form); outside the scope the member does not exist."""
    record = await member_record(session, scope, member_no, year, tz)
    org_code, path = (
        await session.execute(
            select(Organization.code, Organization.path)
            .join(Member, Member.org_id == Organization.id)
            .where(Member.member_no == member_no)
        )
    ).one()
    ids = [int(part) for part in path.strip("/").split("/")]
    rows = await session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    )
    names = {org_id: name for org_id, name in rows}
    org_path = tuple(names[org_id] for org_id in ids if org_id in names)
    line = ArchiveLine(
        record.member_no,
        record.name,
        org_code,
        org_path[-1],
        record.category,
        record.required_hours,
        record.earned_hours,
    )
    credited = [entry for entry in record.entries if entry.credit_hours > 0]
    codes = {entry.venue for entry in credited if entry.venue}
    venue_names = dict(
        (await session.execute(select(Venue.code, Venue.name).where(Venue.code.in_(codes)))).all()
    )
    session_ids = {entry.session_id for entry in credited}
    organizers = dict(
        (
            await session.execute(
                select(TrainingSession.public_id, Organization.name)
                .join(Organization, Organization.id == TrainingSession.org_id)
                .where(TrainingSession.public_id.in_(session_ids))
            )
        ).all()
    )
    return RegistrationForm(line, org_path, year, credited, venue_names, organizers)


@dataclass(frozen=True)
class Cabinet:
    """The cabinet of an organization's subtree for a year: a line per member, by
    organization (in tree order) then member number, and their summary."""

    org_code: str
    org_name: str
    year: int
    lines: list[ArchiveLine]
    summary: CabinetSummary


async def cabinet(session: AsyncSession, scope: Scope, org_code: str, year: int) -> Cabinet:
    """Every member of the organization's subtree with the hours credited to them for the year
    (the same total as their record: records of that year); outside the scope the
    organization does not exist (404)."""
    root = await get_org(session, scope, org_code)
    orgs = (
        await session.execute(
            select(Organization.id, Organization.code, Organization.name, Organization.path).where(
                Organization.path.startswith(root.path, autoescape=True)
            )
        )
    ).all()
    by_id = {row.id: row for row in orgs}
    rows = (
        await session.execute(
            select(
                Member.member_no,
                Member.name,
                Member.org_id,
                Member.category,
                func.coalesce(func.sum(TrainingRecord.credit_hours), 0, type_=Hours()),
            )
            .outerjoin(
                TrainingRecord,
                and_(TrainingRecord.member_id == Member.id, TrainingRecord.year == year),
            )
            .where(Member.org_id.in_(by_id))
            .group_by(Member.id, Member.member_no, Member.name, Member.org_id, Member.category)
        )
    ).all()

    code_of = {org_id: row.code for org_id, row in by_id.items()}
    order = {org_id: tree_sort_key(row.path, code_of) for org_id, row in by_id.items()}
    ordered = sorted(rows, key=lambda row: (order[row[2]], row[0]))
    lines = [
        ArchiveLine(
            number,
            name,
            by_id[org_id].code,
            by_id[org_id].name,
            category,
            REQUIRED_HOURS[category],
            earned,
        )
        for number, name, org_id, category, earned in ordered
    ]
    return Cabinet(root.code, root.name, year, lines, cabinet_summary(lines))
