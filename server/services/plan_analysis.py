"""The analysis of an organization's plans for a year: which child organizations have not filed
(漏备案), planned trainees against the members there are, classes without the first lesson, and
runs and trainees so far per class."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Attendance, Member, Organization, Plan, PlanClass, TrainingSession
from server.domain.plans import (
    FILING_LEVELS,
    ClassTally,
    Totals,
    not_filed,
    totals,
    without_first_lesson,
)
from server.domain.vocabulary import HELD_STATES
from server.services.organizations import get_org, named_in_subtree
from server.services.plans import classes_of


@dataclass(frozen=True)
class ChildFiling:
    """A child organization that should file, and where its plan stands."""

    code: str
    name: str
    level: str
    state: str | None  # None: no plan (漏备案)


@dataclass(frozen=True)
class PlanAnalysis:
    """What the analysis shows about one organization and year."""

    org_code: str
    org_name: str
    year: int
    state: str | None  # the organization's own plan, None without one
    title: str | None
    members: int  # members of the organization's subtree, now
    children: tuple[ChildFiling, ...]
    classes: tuple[ClassTally, ...]
    totals: Totals

    @property
    def not_filed(self) -> list[str]:
        """The child organizations that have not filed."""
        return not_filed({child.code: child.state for child in self.children})

    @property
    def without_first_lesson(self) -> list[str]:
        """Classes of the plan that do not open with the first lesson (首课)."""
        return without_first_lesson(self.classes)


async def _member_counts(session: AsyncSession, org: Organization) -> dict[tuple[str, str], int]:
    """Members of the organization's subtree per (organization path, category), in one query."""
    rows = await session.execute(
        select(Organization.path, Member.category, func.count())
        .join(Member, Member.org_id == Organization.id)
        .where(Organization.path.startswith(org.path, autoescape=True))
        .group_by(Organization.path, Member.category)
    )
    return {(path, category): int(count) for path, category, count in rows}


def _members_in(counts: dict[tuple[str, str], int], paths: list[str], categories: list[str]) -> int:
    """How many of the counted members lie in these subtrees (and categories; [] = all)."""
    return sum(
        count
        for (path, category), count in counts.items()
        if any(path.startswith(target) for target in paths)
        and (not categories or category in categories)
    )


async def _children(session: AsyncSession, org: Organization, year: int) -> list[ChildFiling]:
    rows = await session.execute(
        select(Organization.code, Organization.name, Organization.level, Plan.state)
        .outerjoin(Plan, (Plan.org_id == Organization.id) & (Plan.year == year))
        .where(Organization.parent_id == org.id, Organization.level.in_(sorted(FILING_LEVELS)))
        .order_by(Organization.code)
    )
    return [ChildFiling(code, name, level, state) for code, name, level, state in rows]


def _held(class_ids: list[int]) -> ColumnElement[bool]:
    return TrainingSession.plan_class_id.in_(class_ids) & TrainingSession.state.in_(HELD_STATES)


async def _tallies(
    session: AsyncSession,
    org: Organization,
    classes: list[PlanClass],
    counts: dict[tuple[str, str], int],
) -> tuple[list[ClassTally], int]:
    ids = [row.id for row in classes]
    runs = dict(
        (
            await session.execute(
                select(TrainingSession.plan_class_id, func.count())
                .where(_held(ids))
                .group_by(TrainingSession.plan_class_id)
            )
        ).all()
    )
    # Trainees reached are the plan's own: members of its organization's subtree (a joint
    # session's other members are another plan's, and outside the caller's view).
    present = (
        select(TrainingSession.plan_class_id, Attendance.member_id)
        .join(Attendance, Attendance.session_id == TrainingSession.id)
        .join(Member, Member.id == Attendance.member_id)
        .join(Organization, Organization.id == Member.org_id)
        .where(
            _held(ids),
            Attendance.status == "present",
            Organization.path.startswith(org.path, autoescape=True),
        )
    )
    reached: dict[int, set[int]] = {class_id: set() for class_id in ids}
    for class_id, member_id in await session.execute(present):
        if class_id is not None:
            reached[class_id].add(member_id)
    inside = await named_in_subtree(
        session, org, (code for row in classes for code in row.target_org_codes)
    )
    tallies = []
    for row in classes:
        targets = [inside[code][1] for code in row.target_org_codes if code in inside] or [org.path]
        members = _members_in(counts, targets, list(row.target_categories))
        tallies.append(
            ClassTally(
                row.code,
                row.title,
                row.first_lesson,
                row.runs_planned,
                int(runs.get(row.id, 0)),
                row.trainees_planned,
                members,
                len(reached[row.id]),
            )
        )
    everyone = set().union(*reached.values()) if reached else set()
    return tallies, len(everyone)


async def analyse(session: AsyncSession, scope: Scope, org_code: str, year: int) -> PlanAnalysis:
    """The analysis of an organization inside the scope (404 outside it) for a year."""
    org = await get_org(session, scope, org_code)
    plan = await session.scalar(select(Plan).where(Plan.org_id == org.id, Plan.year == year))
    classes = (await classes_of(session, [plan.id]))[plan.id] if plan is not None else []
    counts = await _member_counts(session, org)
    tallies, reached = await _tallies(session, org, classes, counts)
    return PlanAnalysis(
        org.code,
        org.name,
        year,
        plan.state if plan else None,
        plan.title if plan else None,
        sum(counts.values()),
        tuple(await _children(session, org, year)),
        tuple(tallies),
        totals(tallies, reached),
    )
