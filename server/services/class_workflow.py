"""The ten-step class workflow: a plan class with its steps, marking a step done or not done,
and the city's step list (renamed and reordered by a whole-tree administrator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import ClassStep, WorkflowStep
from server.db.session import lock_for_audit
from server.domain.audit_chain import AuditFacts
from server.domain.class_workflow import (
    STEP_LABELS,
    PrintTemplate,
    Step,
    StepMark,
    StepSetting,
    merge_steps,
    templates_of,
)
from server.domain.sessions import ClassRef
from server.errors import Forbidden, NotFound
from server.services import audit
from server.services.organizations import named_in_subtree
from server.services.plans import find_class

NO_CLASS = "No class {code} in the {year} plan of {org}."


@dataclass(frozen=True)
class ClassFacts:
    """A plan class and its plan, as the class page and the print templates show them."""

    id: int
    org_code: str
    org_name: str
    plan_year: int
    plan_title: str
    plan_state: str
    plan_filed_at: datetime | None
    code: str
    title: str
    runs_planned: int
    trainees_planned: int
    hours_per_run: Decimal
    topics: list[str]
    months: list[int]
    target_categories: list[str]
    target_orgs: list[tuple[str, str]]  # (code, name); [] = the plan's own organization
    first_lesson: bool


@dataclass(frozen=True)
class StepState:
    """One step of a class: done or not, who marked it when, and its print templates."""

    key: str
    position: int
    name: str | None
    label: str
    done: bool
    done_by: str | None
    done_at: datetime | None
    note: str | None
    templates: tuple[PrintTemplate, ...]


async def load_class(session: AsyncSession, scope: Scope, ref: ClassRef) -> ClassFacts:
    """The class, if its plan's organization lies in the scope; otherwise it does not exist."""
    row = await find_class(session, ref)
    if row is None or not scope.covers(row[2].path):
        raise NotFound(NO_CLASS, code=ref.code, year=ref.year, org=ref.org_code)
    klass, plan, org = row
    inside = await named_in_subtree(session, org, klass.target_org_codes)
    return ClassFacts(
        klass.id,
        org.code,
        org.name,
        plan.year,
        plan.title,
        plan.state,
        plan.filed_at,
        klass.code,
        klass.title,
        klass.runs_planned,
        klass.trainees_planned,
        klass.hours_per_run,
        list(klass.topics),
        sorted(klass.months),
        list(klass.target_categories),
        [(code, inside[code][0] if code in inside else code) for code in klass.target_org_codes],
        klass.first_lesson,
    )


async def current_steps(session: AsyncSession) -> list[Step]:
    """The city's step list as it stands (the defaults where nothing is stored)."""
    rows = (
        await session.execute(select(WorkflowStep.key, WorkflowStep.position, WorkflowStep.name))
    ).all()
    return merge_steps(StepSetting(key, position, name) for key, position, name in rows)


async def class_steps(session: AsyncSession, class_id: int) -> list[StepState]:
    """The class's ten steps in the list's order, each with its mark and templates."""
    marks = {
        mark.step_key: mark
        for mark in (
            await session.scalars(select(ClassStep).where(ClassStep.class_id == class_id))
        ).all()
    }
    states = []
    for step in await current_steps(session):
        mark = marks.get(step.key)
        states.append(
            StepState(
                step.key,
                step.position,
                step.name,
                step.label,
                bool(mark and mark.done),
                mark.done_by if mark else None,
                mark.done_at if mark else None,
                mark.note if mark else None,
                templates_of(step.key),
            )
        )
    return states


def _mark_snapshot(
    done: bool, done_by: str | None, done_at: datetime | None, note: str | None
) -> dict[str, Any]:
    stamp = done_at.isoformat() if done_at else None
    return {"done": done, "done_by": done_by, "done_at": stamp, "note": note}


async def mark_step(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    ref: ClassRef,
    key: str,
    mark: StepMark,
    now: datetime,
) -> None:
    """Mark a step of the class done (who and when are kept) or not done; audited. Marking a
    done step done again keeps who did it first and changes only the note."""
    facts = await load_class(session, scope, ref)
    if key not in STEP_LABELS:
        raise NotFound("No workflow step {key}.", key=key)
    await lock_for_audit(session)
    row = (
        await session.scalars(
            select(ClassStep).where(ClassStep.class_id == facts.id, ClassStep.step_key == key)
        )
    ).one_or_none()
    before = (
        _mark_snapshot(row.done, row.done_by, row.done_at, row.note)
        if row
        else _mark_snapshot(False, None, None, None)
    )
    if row is not None and row.done and mark.done:
        done_by, done_at = row.done_by, row.done_at
    else:
        done_by, done_at = (actor, now) if mark.done else (None, None)
    after = _mark_snapshot(mark.done, done_by, done_at, mark.note)
    if after == before:
        return
    if row is None:
        row = ClassStep(class_id=facts.id, step_key=key)
        session.add(row)
    row.done, row.done_by, row.done_at, row.note = mark.done, done_by, done_at, mark.note
    await session.flush()
    action = "class_step.done" if mark.done else "class_step.undone"
    await audit.append(
        session,
        [AuditFacts(now, actor, action, "class_step", f"{ref}/{key}", before, after)],
    )


def require_whole_tree(scope: Scope) -> None:
    """The step list is the city's: only an administrator of the whole tree may change it."""
    if scope.path is not None:
        raise Forbidden(
            "Only an administrator of the whole organization tree may change the workflow steps."
        )


def _list_snapshot(steps: list[Step]) -> dict[str, Any]:
    return {"steps": [{"key": s.key, "position": s.position, "name": s.name} for s in steps]}


async def update_steps(
    session: AsyncSession, scope: Scope, actor: str, settings: list[StepSetting], now: datetime
) -> None:
    """Store the renamed and reordered list (all ten steps); audited when anything changed."""
    require_whole_tree(scope)
    await lock_for_audit(session)
    before = await current_steps(session)
    after = merge_steps(settings)
    if after == before:
        return
    rows = {row.key: row for row in (await session.scalars(select(WorkflowStep))).all()}
    for setting in settings:
        row = rows.get(setting.key)
        if row is None:
            row = WorkflowStep(key=setting.key)
            session.add(row)
        row.position, row.name = setting.position, setting.name
        row.updated_at, row.updated_by = now, actor
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                "workflow_steps.update",
                "workflow_steps",
                "standard",
                _list_snapshot(before),
                _list_snapshot(after),
            )
        ],
    )
