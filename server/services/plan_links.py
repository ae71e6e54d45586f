"""Sessions as runs of plan classes: a class named as ORG/YEAR/CLASS, and stored classes named
again for views and edit forms.

Whose classes a caller sees: the plans inside their subtree and the plans of the organizations
above it (a township runs the county's classes; the county's plan is the township's business
too) — never a sibling subtree's. A session is a run only of a plan of its own organization or
one above it, so a class's runs always lie inside its plan's subtree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Organization, Plan, PlanClass
from server.domain.sessions import ClassRef
from server.errors import Invalid
from server.services.plans import find_class

UNKNOWN_CLASS = "is not a known plan class"
NOT_ABOVE = "belongs to a plan of another organization than the main venue's or one above it"


@dataclass(frozen=True)
class ClassOption:
    """A class a session may be linked to, for the session form."""

    ref: ClassRef
    title: str
    org_name: str


def sees_plan_of(scope: Scope, org_path: str) -> bool:
    """Whether the scope sees the plans of the organization at this path: inside it or above."""
    return scope.covers(org_path) or (scope.path is not None and scope.path.startswith(org_path))


def _seen_plans(scope: Scope) -> ColumnElement[bool]:
    """`sees_plan_of` as a WHERE clause on Organization: inside the scope, or one of the
    organizations its path names (those above it)."""
    above = [int(part) for part in (scope.path or "").strip("/").split("/") if part]
    return or_(scope.clause(Organization.path), Organization.id.in_(above))


async def class_id_for(
    session: AsyncSession, scope: Scope, ref: ClassRef | None, owner_path: str
) -> int | None:
    """The id of the class a session owned at `owner_path` is a run of; a class the scope does
    not see is as unknown as one that does not exist."""
    if ref is None:
        return None
    found = await find_class(session, ref)
    if found is None or not sees_plan_of(scope, found[2].path):
        raise Invalid("No plan class {ref}.", ref=str(ref), fields={"plan_class": UNKNOWN_CLASS})
    klass, _, org = found
    if not owner_path.startswith(org.path):
        raise Invalid(
            "The class {ref} is not of the main venue's organization or one above it.",
            ref=str(ref),
            fields={"plan_class": NOT_ABOVE},
        )
    return klass.id


async def class_refs(
    session: AsyncSession, class_ids: Iterable[int | None], scope: Scope
) -> dict[int, ClassRef]:
    """Class id → its reference, for the given ids (None skipped) that the scope sees."""
    wanted = {class_id for class_id in class_ids if class_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(PlanClass.id, Organization.code, Plan.year, PlanClass.code)
        .join(Plan, Plan.id == PlanClass.plan_id)
        .join(Organization, Organization.id == Plan.org_id)
        .where(PlanClass.id.in_(wanted), _seen_plans(scope))
    )
    return {class_id: ClassRef(org_code, year, code) for class_id, org_code, year, code in rows}


async def class_options(session: AsyncSession, scope: Scope, year: int) -> list[ClassOption]:
    """The classes of the year's plans the scope sees, from the top down, in class order."""
    rows = await session.execute(
        select(Organization.code, Organization.name, PlanClass.code, PlanClass.title)
        .join(Plan, Plan.org_id == Organization.id)
        .join(PlanClass, PlanClass.plan_id == Plan.id)
        .where(Plan.year == year, _seen_plans(scope))
        .order_by(Organization.path, PlanClass.position, PlanClass.code)
    )
    return [
        ClassOption(ClassRef(org_code, year, code), title, org_name)
        for org_code, org_name, code, title in rows
    ]
