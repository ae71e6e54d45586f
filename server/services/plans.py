"""Training-plan use cases (分级备案): create, edit, file, accept or return, look up, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import ClassStep, Organization, Plan, PlanClass, TrainingSession
from server.db.session import lock_for_audit
from server.domain import validation as v
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.plans import (
    FILING_LEVELS,
    ClassFields,
    PlanBody,
    PlanFields,
    next_state,
    reviews,
)
from server.domain.sessions import ClassRef
from server.domain.vocabulary import EDITABLE_PLAN_STATES
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.services import audit
from server.services.clock import utcnow
from server.services.organizations import get_org, named_in_subtree, org_named_in

NOT_FILING = "is a party branch, which files no plan of its own"
TARGET_OUTSIDE = "names an organization outside the plan's organization"
STATE_MESSAGES = MappingProxyType(
    {
        "edit": "Only a plan in draft or returned for changes can be edited.",
        "file": "Only a plan in draft or returned for changes can be filed.",
        "accept": "Only a filed plan can be accepted.",
        "return": "Only a filed plan can be returned.",
    }
)


@dataclass(frozen=True)
class PlanView:
    """A plan as callers see it, with its classes in order."""

    org_code: str
    org_name: str
    year: int
    title: str
    state: str
    created_at: datetime
    updated_at: datetime
    filed_at: datetime | None
    filed_by: str | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_comment: str | None
    classes: tuple[ClassFields, ...]
    parent_path: str | None  # who reviews it: the level above (not shown)

    @property
    def body(self) -> PlanBody:
        """The title and classes, as an edit form starts from them."""
        return PlanBody(self.title, self.classes)


def plan_ref(org_code: str, year: int) -> str:
    """How the audit trail names a plan."""
    return f"{org_code}/{year}"


def _class_fields(row: PlanClass) -> ClassFields:
    return ClassFields(
        row.code,
        row.title,
        row.runs_planned,
        row.trainees_planned,
        row.hours_per_run,
        tuple(row.topics),
        tuple(row.months),
        tuple(row.target_categories),
        tuple(row.target_org_codes),
        row.first_lesson,
    )


async def find_class(
    session: AsyncSession, ref: ClassRef
) -> tuple[PlanClass, Plan, Organization] | None:
    """The class a reference names, with its plan and the plan's organization (no scope
    check: each caller decides who sees it)."""
    row = (
        await session.execute(
            select(PlanClass, Plan, Organization)
            .join(Plan, PlanClass.plan_id == Plan.id)
            .join(Organization, Plan.org_id == Organization.id)
            .where(
                Organization.code == ref.org_code, Plan.year == ref.year, PlanClass.code == ref.code
            )
        )
    ).first()
    return (row[0], row[1], row[2]) if row else None


async def classes_of(session: AsyncSession, plan_ids: list[int]) -> dict[int, list[PlanClass]]:
    found: dict[int, list[PlanClass]] = {plan_id: [] for plan_id in plan_ids}
    rows = await session.scalars(
        select(PlanClass)
        .where(PlanClass.plan_id.in_(plan_ids))
        .order_by(PlanClass.plan_id, PlanClass.position)
    )
    for row in rows:
        found[row.plan_id].append(row)
    return found


async def _parent_paths(session: AsyncSession, orgs: list[Organization]) -> dict[int, str]:
    parent_ids = {org.parent_id for org in orgs if org.parent_id is not None}
    rows = await session.execute(
        select(Organization.id, Organization.path).where(Organization.id.in_(parent_ids))
    )
    return {org_id: path for org_id, path in rows}


async def _views(session: AsyncSession, rows: list[tuple[Plan, Organization]]) -> list[PlanView]:
    classes = await classes_of(session, [plan.id for plan, _ in rows])
    parents = await _parent_paths(session, [org for _, org in rows])
    return [
        PlanView(
            org.code,
            org.name,
            plan.year,
            plan.title,
            plan.state,
            plan.created_at,
            plan.updated_at,
            plan.filed_at,
            plan.filed_by,
            plan.reviewed_at,
            plan.reviewed_by,
            plan.review_comment,
            tuple(_class_fields(row) for row in classes[plan.id]),
            parents.get(org.parent_id) if org.parent_id is not None else None,
        )
        for plan, org in rows
    ]


async def _plan_in_scope(
    session: AsyncSession, scope: Scope, org_code: str, year: int
) -> tuple[Plan, Organization]:
    """The plan of an organization inside the scope; outside it does not exist (404)."""
    row = (
        await session.execute(
            select(Plan, Organization)
            .join(Organization, Plan.org_id == Organization.id)
            .where(Organization.code == org_code, Plan.year == year)
        )
    ).first()
    if row is None or not scope.covers(row[1].path):
        raise NotFound("No plan of {org} for {year}.", org=org_code, year=year)
    return row[0], row[1]


async def get_plan(session: AsyncSession, scope: Scope, org_code: str, year: int) -> PlanView:
    """One plan inside the scope."""
    plan, org = await _plan_in_scope(session, scope, org_code, year)
    return (await _views(session, [(plan, org)]))[0]


async def list_plans(
    session: AsyncSession, scope: Scope, *, year: int | None = None, org_code: str | None = None
) -> list[PlanView]:
    """Plans inside the scope (of one organization's subtree, of one year), by year, then in
    tree order."""
    query = (
        select(Plan, Organization)
        .join(Organization, Plan.org_id == Organization.id)
        .where(scope.clause(Organization.path))
        .order_by(Plan.year.desc(), Organization.path, Organization.code)
    )
    if org_code is not None:
        org = await get_org(session, scope, org_code)
        query = query.where(Organization.path.startswith(org.path, autoescape=True))
    if year is not None:
        query = query.where(Plan.year == year)
    rows = [(plan, org) for plan, org in (await session.execute(query)).all()]
    return await _views(session, rows)


async def _check_targets(session: AsyncSession, org: Organization, body: PlanBody) -> None:
    """Every target organization lies in the plan organization's subtree (422 otherwise, the
    same for one that does not exist)."""
    codes = {code for item in body.classes for code in item.target_org_codes}
    inside = await named_in_subtree(session, org, codes)
    problems = v.Problems()
    for index, item in enumerate(body.classes):
        if any(code not in inside for code in item.target_org_codes):
            problems[f"classes[{index}].target_org_codes"] = TARGET_OUTSIDE
    if problems:
        raise Invalid("A class targets organizations outside {org}.", org=org.code, fields=problems)


async def _write_classes(session: AsyncSession, plan: Plan, body: PlanBody) -> None:
    """Make the plan's classes these: kept codes keep their row (and the sessions and workflow
    steps hung on it), dropped ones go, new ones are added."""
    existing = {row.code: row for row in (await classes_of(session, [plan.id]))[plan.id]}
    wanted = {item.code for item in body.classes}
    dropped = {row.id: code for code, row in existing.items() if code not in wanted}
    if dropped:
        await _check_droppable(session, dropped)
        await session.execute(delete(PlanClass).where(PlanClass.id.in_(dropped)))
    for position, item in enumerate(body.classes):
        row = existing.get(item.code)
        if row is None:
            row = PlanClass(plan_id=plan.id, code=item.code, created_at=plan.updated_at)
            session.add(row)
        row.position, row.title = position, item.title
        row.runs_planned, row.trainees_planned = item.runs_planned, item.trainees_planned
        row.hours_per_run, row.topics = item.hours_per_run, list(item.topics)
        row.months, row.target_categories = list(item.months), list(item.target_categories)
        row.target_org_codes, row.first_lesson = list(item.target_org_codes), item.first_lesson
        row.updated_at = plan.updated_at
    await session.flush()


async def _check_droppable(session: AsyncSession, dropped: dict[int, str]) -> None:
    """A class that sessions are runs of, or whose workflow has begun, is not dropped from a
    plan by an edit (its runs and its steps would go with it, unseen): 409 naming it."""
    used = set(
        (
            await session.scalars(
                select(TrainingSession.plan_class_id).where(
                    TrainingSession.plan_class_id.in_(dropped)
                )
            )
        ).all()
    ) | set(
        (
            await session.scalars(
                select(ClassStep.class_id).where(ClassStep.class_id.in_(dropped), ClassStep.done)
            )
        ).all()
    )
    if used:
        raise Conflict(
            "Classes {codes} have runs or workflow steps done; keep them in the plan.",
            codes=", ".join(sorted(dropped[class_id] for class_id in used if class_id)),
        )


async def create_plan(
    session: AsyncSession, scope: Scope, actor: str, fields: PlanFields
) -> PlanView:
    """Start a plan (draft) of an organization inside the scope: one per organization and year;
    branches file none."""
    await lock_for_audit(session)  # two clerks saving at once: one plan, the other a 409
    org = await org_named_in(session, scope, fields.org_code)
    if org.level not in FILING_LEVELS:
        raise Invalid(
            "A party branch files no plan of its own; its committee's plan covers it.",
            fields={"org_code": NOT_FILING},
        )
    exists = await session.scalar(
        select(Plan.id).where(Plan.org_id == org.id, Plan.year == fields.year)
    )
    if exists is not None:
        raise Conflict(
            "{org} already has a plan for {year}.", org=fields.org_code, year=fields.year
        )
    await _check_targets(session, org, fields.body)
    now = utcnow()
    plan = Plan(
        org_id=org.id,
        year=fields.year,
        title=fields.body.title,
        state="draft",
        created_at=now,
        updated_at=now,
    )
    session.add(plan)
    await session.flush()
    await _write_classes(session, plan, fields.body)
    ref = plan_ref(org.code, plan.year)
    after = {"org_code": org.code, "year": plan.year, "state": "draft", **fields.body.to_json()}
    await audit.append(session, [AuditFacts(now, actor, "plan.create", "plan", ref, None, after)])
    return (await _views(session, [(plan, org)]))[0]


async def update_plan(
    session: AsyncSession, scope: Scope, actor: str, org_code: str, year: int, body: PlanBody
) -> PlanView:
    """Replace the title and classes of a plan in draft or returned (409 otherwise)."""
    await lock_for_audit(session)  # the state is read and written by one writer at a time
    plan, org = await _plan_in_scope(session, scope, org_code, year)
    if plan.state not in EDITABLE_PLAN_STATES:
        raise Conflict(STATE_MESSAGES["edit"])
    await _check_targets(session, org, body)
    before = (await _views(session, [(plan, org)]))[0].body.to_json()
    plan.title, plan.updated_at = body.title, utcnow()
    await session.flush()
    await _write_classes(session, plan, body)
    was, becomes = changed_fields(before, body.to_json())
    if was or becomes:
        await audit.append(
            session,
            [
                AuditFacts(
                    plan.updated_at,
                    actor,
                    "plan.update",
                    "plan",
                    plan_ref(org.code, year),
                    was,
                    becomes,
                )
            ],
        )
    return (await _views(session, [(plan, org)]))[0]


async def _parent_path(session: AsyncSession, org: Organization) -> str | None:
    if org.parent_id is None:
        return None
    return await session.scalar(select(Organization.path).where(Organization.id == org.parent_id))


async def act(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    org_code: str,
    year: int,
    action: str,
    comment: str | None = None,
) -> PlanView:
    """File (draft|returned → filed), accept or return (filed → accepted|returned) a plan.
    Accepting and returning belong to the level above the plan's organization (403 for the
    plan's own level); returning needs a comment (422)."""
    await lock_for_audit(session)  # two reviewers at once: one moves the plan, the other a 409
    plan, org = await _plan_in_scope(session, scope, org_code, year)
    if action != "file" and not reviews(scope.path, await _parent_path(session, org)):
        raise Forbidden("Only the level above {org} reviews its plan.", org=org_code)
    if action == "return" and not comment:
        raise Invalid(
            "Say what should change before returning the plan.",
            fields={"comment": v.REQUIRED},
        )
    target = next_state(action, plan.state)
    if target is None:
        raise Conflict(STATE_MESSAGES[action])
    now, before = utcnow(), plan.state
    plan.state, plan.updated_at = target, now
    after: dict[str, Any] = {"state": target}
    if action == "file":
        # A refiled plan awaits a new review; the last one stays in the audit trail.
        plan.filed_at, plan.filed_by = now, actor
        plan.reviewed_at, plan.reviewed_by, plan.review_comment = None, None, None
    else:
        plan.reviewed_at, plan.reviewed_by, plan.review_comment = now, actor, comment
        after["comment"] = comment
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                f"plan.{action}",
                "plan",
                plan_ref(org.code, year),
                {"state": before},
                after,
            )
        ],
    )
    return (await _views(session, [(plan, org)]))[0]
