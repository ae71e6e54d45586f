"""The demo city's plans (备案) of this year: every level's plan in its state (one county has
filed nothing, one plan is returned with a comment), the classes the demo sessions are runs of,
and the first workflow steps of the city's young-cadre class — all through the services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import WHOLE_TREE
from server.db.models import Organization, Plan, PlanClass
from server.demo import data
from server.domain.class_workflow import StepMark
from server.domain.plans import parse_plan
from server.domain.sessions import ClassRef
from server.services import class_workflow, plans

HOURS_PER_RUN = 3
ACTIONS_TO = MappingProxyType(
    {
        "draft": (),
        "filed": ("file",),
        "accepted": ("file", "accept"),
        "returned": ("file", "return"),
    }
)


def plan_body(spec: data.PlanSpec, year: int) -> dict[str, Any]:
    """The plan as the API takes it."""
    return {
        "org_code": spec.org_code,
        "year": year,
        "title": f"{spec.title}（{year}年）",
        "classes": [
            {
                "code": item.code,
                "title": item.title,
                "runs_planned": item.runs,
                "trainees_planned": item.trainees,
                "hours_per_run": HOURS_PER_RUN,
                "topics": list(item.topics),
                "months": list(item.months),
                "target_categories": list(item.categories),
                "target_org_codes": [],
                "first_lesson": item.first_lesson,
            }
            for item in spec.classes
        ],
    }


async def create_plans(
    session: AsyncSession,
    year: int,
    now: datetime,
    actor: str,
    progress: Callable[[str], None],
) -> dict[ClassRef, int]:
    """File the year's plans; return each class's id by its reference."""
    for spec in data.PLANS:
        fields, problems = parse_plan(plan_body(spec, year))
        if fields is None:
            raise RuntimeError(f"the demo plan of {spec.org_code} is wrong: {problems}")
        await plans.create_plan(session, WHOLE_TREE, actor, fields)
        for action in ACTIONS_TO[spec.state]:
            await plans.act(session, WHOLE_TREE, actor, spec.org_code, year, action, spec.comment)
    for key in data.DONE_STEPS:
        ref = ClassRef(data.CITY_CODE, year, "YC")
        await class_workflow.mark_step(
            session, WHOLE_TREE, actor, ref, key, StepMark(True, None), now
        )
    rows = await session.execute(
        select(Organization.code, PlanClass.code, PlanClass.id)
        .join(Plan, Plan.org_id == Organization.id)
        .join(PlanClass, PlanClass.plan_id == Plan.id)
        .where(Plan.year == year)
    )
    classes = {ClassRef(org_code, year, code): class_id for org_code, code, class_id in rows}
    progress(f"plans: {len(data.PLANS)} for {year} with {len(classes)} classes")
    return classes
