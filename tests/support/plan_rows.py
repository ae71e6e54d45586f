"""What the authorization matrix needs about plans: a fresh organization with a plan in a given
state for each request, and a plan as the API and the page's form take it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import Organization, Plan, PlanClass
from server.db.session import write_session
from server.domain.organizations import OrgFields
from server.domain.plans import parse_plan
from server.services import organizations, plans

PLAN_TITLE = Plan.title  # what a created or edited plan is found by: "P-<fresh>"
PLAN_ACTIONS_TO = {"none": (), "draft": (), "filed": ("file",), "returned": ("file", "return")}
PLAN_MARKS = {"a": ("a1", "甲区培训计划"), "b": ("b1", "乙区培训计划")}


def plan_body(ref: str, fresh: str) -> dict[str, Any]:
    """A new 2026 plan (API body) of an organization, titled P-<fresh>, with one class."""
    return {
        "org_code": ref,
        "year": 2026,
        "title": f"P-{fresh}",
        "classes": [
            {
                "code": "C01",
                "title": "首课",
                "runs_planned": 1,
                "trainees_planned": 1,
                "hours_per_run": 2,
                "first_lesson": True,
            }
        ],
    }


def plan_form(ref: str, fresh: str) -> dict[str, str]:
    """The same plan as the page's form sends it (server/pages/plan_form.py)."""
    row = {"code": "C01", "title": "首课", "runs": "1", "trainees": "1", "hours": "2"}
    return {
        "org_code": ref,
        "year": "2026",
        "title": f"P-{fresh}",
        "rows": "1",
        **{f"c0_{name}": value for name, value in row.items()},
    }


async def add_plan(
    db: async_sessionmaker[AsyncSession], org_code: str, title: str, state: str = "draft"
) -> None:
    """A 2026 plan of an organization, brought into `state` through the plan use cases."""
    fields, problems = parse_plan({**plan_body(org_code, ""), "title": title})
    assert fields is not None, problems
    async with write_session(db) as session:
        await plans.create_plan(session, WHOLE_TREE, "test", fields)
        for action in PLAN_ACTIONS_TO[state]:
            await plans.act(session, WHOLE_TREE, "test", org_code, 2026, action, "请修改")


async def seed_plans(db: async_sessionmaker[AsyncSession]) -> None:
    """A draft 2026 plan of committee a1 and of committee b1."""
    for org_code, title in PLAN_MARKS.values():
        await add_plan(db, org_code, title)


async def make_plan_org(db: async_sessionmaker[AsyncSession], state: str) -> str:
    """A new committee under county a, with a 2026 plan in `state` ("none": without a plan);
    returns its code."""
    code = f"pa-{uuid.uuid4().hex[:8]}"
    async with write_session(db) as session:
        await organizations.create_org(
            session, WHOLE_TREE, "test", OrgFields(code, "计划党委", "committee", "a")
        )
    if state != "none":
        await add_plan(db, code, "计划", state)
    return code


async def add_class(
    db: async_sessionmaker[AsyncSession],
    org_code: str,
    year: int,
    code: str,
    plan_title: str,
    *,
    state: str = "filed",
    **fields: Any,
) -> int:
    """A class of the organization's plan for the year, written straight into the tables (the
    plan made in `state` when missing); `fields` override a small class's values. Returns the
    class's id."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "position": 1,
        "title": plan_title,
        "runs_planned": 1,
        "trainees_planned": 1,
        "hours_per_run": Decimal(2),
        "topics": [],
        "months": [],
        "target_categories": [],
        "target_org_codes": [],
        "first_lesson": False,
        **fields,
    }
    async with write_session(db) as session:
        org_id = await session.scalar(select(Organization.id).where(Organization.code == org_code))
        plan_id = await session.scalar(
            select(Plan.id).where(Plan.org_id == org_id, Plan.year == year)
        )
        if plan_id is None:
            plan = Plan(
                org_id=org_id,
                year=year,
                title=plan_title,
                state=state,
                created_at=now,
                updated_at=now,
                filed_at=now,
                filed_by="user:operator-a",
            )
            session.add(plan)
            await session.flush()
            plan_id = plan.id
        klass = PlanClass(plan_id=plan_id, code=code, created_at=now, updated_at=now, **values)
        session.add(klass)
        await session.flush()
        return klass.id
