"""The monthly report (月报告) of an organization's subtree, from a few GROUP BY queries over the
whole subtree at once; members are counted where they belong now (current membership)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Text, case, cast, distinct, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from server.auth.principal import Scope
from server.db.models import (
    Attendance,
    Member,
    Organization,
    Plan,
    PlanClass,
    TrainingRecord,
    TrainingSession,
)
from server.domain.members import REQUIRED_HOURS
from server.domain.reports import (
    MONTHS_IN_YEAR,
    Figures,
    Month,
    OrgFacts,
    Tally,
    is_below_requirement,
    monthly_report,
    runs_in_month,
    scaled_requirement,
)
from server.domain.vocabulary import FILED_PLAN_STATES, HELD_STATES
from server.services.organizations import get_org

# Up to this many members (a committee or a small county) a report reads member by member
# through the indexes; above it, one pass over the month's and the year's rows is faster.
SMALL_SUBTREE_MEMBERS = 20_000


def _flagged(flag: str) -> object:
    """1 for a result carrying this flag (flags are a JSON list of fixed words), else 0."""
    return case((cast(Attendance.flags, Text).like(f'%"{flag}"%'), 1), else_=0)


def _in_orgs(org_ids: list[int], large: bool) -> ColumnElement[bool]:
    """Members of these organizations. For a large subtree the column is wrapped in an
    expression, so SQLite does not walk the members one by one through their index but
    reads the month's results or the year's records in one pass (PostgreSQL plans by its
    statistics either way)."""
    column = (Member.org_id + 0) if large else Member.org_id
    return column.in_(org_ids)


async def _member_totals(session: AsyncSession, org_ids: list[int]) -> dict[tuple[int, str], int]:
    """(organization, category) → how many members it has now."""
    rows = await session.execute(
        select(Member.org_id, Member.category, func.count())
        .where(Member.org_id.in_(org_ids))
        .group_by(Member.org_id, Member.category)
    )
    return {(org_id, category): int(count) for org_id, category, count in rows}


async def _member_counts(
    session: AsyncSession,
    org_ids: list[int],
    totals: dict[tuple[int, str], int],
    month: Month,
    tz: ZoneInfo,
    large: bool,
) -> dict[int, Tally]:
    """Per organization, of its own members: how many (`totals`), trained in the month,
    trained since January 1, and below the pro-rated requirement (hours through the month's
    end)."""
    month_start, month_end = month.bounds(tz)
    # Windows are the sessions' own start times: a record's copy of it may be stored in
    # another text form on SQLite (written in bulk), where comparing it would be unreliable.
    since_january = select(TrainingSession.id).where(
        TrainingSession.starts_at >= month.year_starts(tz),
        TrainingSession.starts_at < month_end,
    )
    this_month = select(TrainingSession.id).where(
        TrainingSession.starts_at >= month_start, TrainingSession.starts_at < month_end
    )
    # Raw hundredths (the stored integers) keep the comparison exact inside the database.
    hundredths = type_coerce(TrainingRecord.credit_hours, Integer)
    earned_query = select(
        TrainingRecord.member_id.label("member_id"),
        func.sum(hundredths).label("hundredths"),
        func.max(case((TrainingRecord.session_id.in_(this_month), 1), else_=0)).label("in_month"),
    ).where(TrainingRecord.year == month.year, TrainingRecord.session_id.in_(since_january))
    if not large:
        in_subtree = select(Member.id).where(_in_orgs(org_ids, large))
        earned_query = earned_query.where(TrainingRecord.member_id.in_(in_subtree))
    earned = earned_query.group_by(TrainingRecord.member_id).subquery()
    threshold = case(
        {category: scaled_requirement(hours, month) for category, hours in REQUIRED_HOURS.items()},
        value=Member.category,
        else_=0,
    )
    rows = await session.execute(
        select(
            Member.org_id,
            Member.category,
            func.count(),
            func.sum(earned.c.in_month),
            func.sum(case((earned.c.hundredths * MONTHS_IN_YEAR < threshold, 1), else_=0)),
        )
        .select_from(earned)
        .join(Member, Member.id == earned.c.member_id)
        .where(_in_orgs(org_ids, large))
        .group_by(Member.org_id, Member.category)
    )
    trained = {(org_id, category): (int(n), int(m), int(b)) for org_id, category, n, m, b in rows}
    tallies: dict[int, Tally] = defaultdict(Tally)
    for (org_id, category), total in totals.items():
        count, in_month, short = trained.get((org_id, category), (0, 0, 0))
        # Members with no credit at all are below whenever the pro-rated requirement is > 0.
        if is_below_requirement(Decimal(0), REQUIRED_HOURS.get(category, Decimal(0)), month):
            short += total - count
        tallies[org_id] = tallies[org_id] + Tally(
            members_total=total,
            members_trained_month=in_month,
            members_trained_ytd=count,
            below_requirement=short,
        )
    return tallies


async def _month_results(
    session: AsyncSession, org_ids: list[int], month: Month, tz: ZoneInfo, large: bool
) -> tuple[dict[int, Tally], dict[int, set[int]]]:
    """Per organization, of its own members' results in the month's held sessions: present,
    repeat, outage and conflict counts, and which sessions they took part in (on the roster
    or present: finalization writes a result for every roster member and every walk-in)."""
    month_start, month_end = month.bounds(tz)
    rows = await session.execute(
        select(
            Member.org_id,
            Attendance.session_id,
            func.sum(case((Attendance.status == "present", 1), else_=0)),
            func.sum(
                case(
                    (
                        (Attendance.status == "present")
                        & TrainingSession.replay_of_id.is_not(None),
                        1,
                    ),
                    else_=0,
                )
            ),
            func.sum(_flagged("repeat")),
            func.sum(case((Attendance.reason == "outage", 1), else_=0)),
            func.sum(_flagged("conflict")),
        )
        .select_from(Attendance)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .join(Member, Member.id == Attendance.member_id)
        .where(
            TrainingSession.state.in_(HELD_STATES),
            TrainingSession.starts_at >= month_start,
            TrainingSession.starts_at < month_end,
            _in_orgs(org_ids, large),
        )
        .group_by(Member.org_id, Attendance.session_id)
    )
    tallies: dict[int, Tally] = defaultdict(Tally)
    sessions: dict[int, set[int]] = defaultdict(set)
    for org_id, session_id, present, makeup, repeat, outage, conflict in rows:
        tallies[org_id] = tallies[org_id] + Tally(
            person_times=int(present),
            makeup_person_times=int(makeup),
            repeat_blocked=int(repeat),
            partial_outage=int(outage),
            conflicts=int(conflict),
        )
        sessions[org_id].add(session_id)
    return tallies, sessions


async def _runs_held(
    session: AsyncSession, org_ids: list[int], month: Month, tz: ZoneInfo
) -> dict[int, Tally]:
    """Per organization: the held sessions it owns that start in the month."""
    month_start, month_end = month.bounds(tz)
    rows = await session.execute(
        select(TrainingSession.org_id, func.count())
        .where(
            TrainingSession.state.in_(HELD_STATES),
            TrainingSession.starts_at >= month_start,
            TrainingSession.starts_at < month_end,
            TrainingSession.org_id.in_(org_ids),
        )
        .group_by(TrainingSession.org_id)
    )
    return {org_id: Tally(runs_held=int(count)) for org_id, count in rows}


async def _runs_planned(
    session: AsyncSession, org_ids: list[int], month: Month
) -> dict[int, Tally]:
    """Per organization: the runs its filed or accepted plan for the year puts in the month."""
    planned: dict[int, int] = {}
    for org_id, runs, months in await session.execute(
        select(Plan.org_id, PlanClass.runs_planned, PlanClass.months)
        .join(PlanClass, PlanClass.plan_id == Plan.id)
        .where(
            Plan.year == month.year,
            Plan.state.in_(FILED_PLAN_STATES),
            Plan.org_id.in_(org_ids),
        )
    ):
        planned[org_id] = planned.get(org_id, 0) + runs_in_month(runs, months, month.month)
    return {org_id: Tally(runs_planned=runs) for org_id, runs in planned.items()}


async def report_for(
    session: AsyncSession,
    root: Organization,
    month: Month,
    tz: ZoneInfo,
    small_subtree: int = SMALL_SUBTREE_MEMBERS,
) -> Figures:
    """The report of an organization already checked to lie in the caller's scope (a subtree
    of more than `small_subtree` members is read in one pass; the figures are the same)."""
    orgs = (
        await session.execute(
            select(Organization.id, Organization.code, Organization.path, Organization.parent_id)
            .where(Organization.path.startswith(root.path, autoescape=True))
            .order_by(Organization.id)
        )
    ).all()
    org_ids = [row.id for row in orgs]
    totals = await _member_totals(session, org_ids)
    large = sum(totals.values()) > small_subtree
    members = await _member_counts(session, org_ids, totals, month, tz, large)
    results, sessions = await _month_results(session, org_ids, month, tz, large)
    runs = await _runs_held(session, org_ids, month, tz)
    planned = await _runs_planned(session, org_ids, month)
    facts = {
        row.id: OrgFacts(
            row.code,
            row.path,
            sum(
                (part.get(row.id, Tally()) for part in (members, results, runs, planned)),
                Tally(),
            ),
            frozenset(sessions.get(row.id, ())),
        )
        for row in orgs
    }
    children = [facts[row.id] for row in orgs if row.parent_id == root.id]
    return monthly_report(facts[root.id], children, month, facts.values())


async def monthly(
    session: AsyncSession, scope: Scope, org_code: str, month: Month, tz: ZoneInfo
) -> Figures:
    """GET reports/monthly: the organization must lie in the scope (else 404)."""
    root = await get_org(session, scope, org_code)
    return await report_for(session, root, month, tz)


# The report page's hours bins, in 学时: an ordinary member needs 32 a year, a secretary or a
# committee member 56; below 8 is short even of a quarter of the ordinary requirement.
HOURS_BIN_EDGES = (8, 16, 32, 56)


@dataclass(frozen=True)
class ReportSeries:
    """What the report page draws besides the figures: members of the subtree trained in each
    month from January through the month, and members by hours earned this year through the
    month's end (no hours, then below each of HOURS_BIN_EDGES, then at or above the last)."""

    trained_by_month: tuple[int, ...]
    hours_bins: tuple[int, ...]


async def _trained_by_month(
    session: AsyncSession, org_ids: list[int], month: Month, tz: ZoneInfo, large: bool
) -> tuple[int, ...]:
    """Distinct members with credit from sessions starting in each month, January..month."""
    ends = [Month(month.year, m).following().starts(tz) for m in range(1, month.month + 1)]
    month_no = case(
        *((TrainingSession.starts_at < end, index) for index, end in enumerate(ends, start=1)),
        else_=0,
    )
    # Grouped outside a subquery: PostgreSQL would not match the CASE's parameters twice.
    credited = (
        select(TrainingRecord.member_id.label("member_id"), month_no.label("month_no"))
        .join(TrainingSession, TrainingSession.id == TrainingRecord.session_id)
        .join(Member, Member.id == TrainingRecord.member_id)
        .where(
            TrainingRecord.year == month.year,
            TrainingSession.starts_at >= month.year_starts(tz),
            TrainingSession.starts_at < ends[-1],
            _in_orgs(org_ids, large),
        )
        .subquery()
    )
    rows = await session.execute(
        select(credited.c.month_no, func.count(distinct(credited.c.member_id))).group_by(
            credited.c.month_no
        )
    )
    counts = {int(number): int(count) for number, count in rows}
    return tuple(counts.get(number, 0) for number in range(1, month.month + 1))


async def _hours_bins(
    session: AsyncSession,
    org_ids: list[int],
    month: Month,
    tz: ZoneInfo,
    members_total: int,
    large: bool,
) -> tuple[int, ...]:
    """Members by the hours they earned from January 1 through the month's end, in bins."""
    _, month_end = month.bounds(tz)
    hundredths = type_coerce(TrainingRecord.credit_hours, Integer)
    earned = (
        select(TrainingRecord.member_id.label("member_id"), func.sum(hundredths).label("earned"))
        .join(TrainingSession, TrainingSession.id == TrainingRecord.session_id)
        .join(Member, Member.id == TrainingRecord.member_id)
        .where(
            TrainingRecord.year == month.year,
            TrainingSession.starts_at >= month.year_starts(tz),
            TrainingSession.starts_at < month_end,
            _in_orgs(org_ids, large),
        )
        .group_by(TrainingRecord.member_id)
        .subquery()
    )
    bin_no = case(
        (earned.c.earned <= 0, 0),
        *((earned.c.earned < edge * 100, index) for index, edge in enumerate(HOURS_BIN_EDGES, 1)),
        else_=len(HOURS_BIN_EDGES) + 1,
    )
    binned = select(bin_no.label("bin_no")).select_from(earned).subquery()
    rows = await session.execute(select(binned.c.bin_no, func.count()).group_by(binned.c.bin_no))
    counts = {int(number): int(count) for number, count in rows}
    # Members without a single record of the year are in the first bin with the zeros.
    counts[0] = counts.get(0, 0) + members_total - sum(counts.values())
    return tuple(counts.get(number, 0) for number in range(len(HOURS_BIN_EDGES) + 2))


async def report_series(
    session: AsyncSession, root: Organization, month: Month, tz: ZoneInfo, members_total: int
) -> ReportSeries:
    """The monthly trend and the hours distribution of an organization's subtree (already
    checked to lie in the caller's scope; `members_total` is the report's own count)."""
    org_ids = list(
        (
            await session.execute(
                select(Organization.id).where(
                    Organization.path.startswith(root.path, autoescape=True)
                )
            )
        ).scalars()
    )
    large = members_total > SMALL_SUBTREE_MEMBERS
    return ReportSeries(
        await _trained_by_month(session, org_ids, month, tz, large),
        await _hours_bins(session, org_ids, month, tz, members_total, large),
    )
