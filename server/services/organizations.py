"""Organization use cases: create, look up and list the tree with member counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Member, Organization
from server.domain.audit_chain import AuditFacts
from server.domain.labels import LEVEL_LABELS
from server.domain.organizations import OrgFields, child_path, may_parent, roll_up
from server.errors import Conflict, Forbidden, Invalid, NotFound, Term
from server.services import audit
from server.services.clock import utcnow


@dataclass(frozen=True)
class OrgView:
    """An organization as callers see it."""

    code: str
    name: str
    level: str
    parent_code: str | None
    path: str


@dataclass(frozen=True)
class TreeNode:
    """One line of the organization tree page."""

    code: str
    name: str
    level: str
    depth: int
    own_members: int
    subtree_members: int
    parent_code: str | None


async def get_org(session: AsyncSession, scope: Scope, code: str) -> Organization:
    """The organization with this code inside the scope; outside it does not exist (404)."""
    org = (
        await session.execute(select(Organization).where(Organization.code == code))
    ).scalar_one_or_none()
    if org is None or not scope.covers(org.path):
        raise NotFound("No organization with code {code}.", code=code)
    return org


async def named_in_subtree(
    session: AsyncSession, root: Organization, codes: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """Of these codes, the organizations inside the root's subtree: code → (name, path)."""
    rows = await session.execute(
        select(Organization.code, Organization.name, Organization.path).where(
            Organization.code.in_(set(codes)),
            Organization.path.startswith(root.path, autoescape=True),
        )
    )
    return {code: (name, path) for code, name, path in rows}


async def org_named_in(
    session: AsyncSession, scope: Scope, code: str, field: str = "org_code"
) -> Organization:
    """The organization a form or body names in `field`; outside the scope it does not exist
    (422 on that field, the same answer as for a code nobody uses)."""
    org = (
        await session.execute(select(Organization).where(Organization.code == code))
    ).scalar_one_or_none()
    if org is None or not scope.covers(org.path):
        message = (
            "The parent organization {code} does not exist."
            if field == "parent_code"
            else "The organization {code} does not exist."
        )
        raise Invalid(message, code=code, fields={field: "is not a known organization"})
    return org


async def create_org(session: AsyncSession, scope: Scope, actor: str, fields: OrgFields) -> OrgView:
    """Add an organization under a parent inside the scope (a root only for the whole tree)."""
    code, name, level, parent_code = fields.code, fields.name, fields.level, fields.parent_code
    parent: Organization | None = None
    if parent_code is None:
        if scope.path is not None:
            raise Forbidden(
                "Only an administrator of the whole tree may add a top-level organization."
            )
    else:
        parent = await org_named_in(session, scope, parent_code, "parent_code")
        if not may_parent(parent.level, level):
            raise Invalid(
                "An organization of level “{child}” cannot be placed under one of level "
                "“{parent}”.",
                child=Term(LEVEL_LABELS[level]),
                parent=Term(LEVEL_LABELS[parent.level]),
                fields={"level": "must be below the parent's level"},
            )
    holder = await session.scalar(select(Organization.path).where(Organization.code == code))
    if holder is not None:
        if not scope.covers(holder):
            # Unique across the city, so refused; never confirmed to another subtree.
            raise Conflict("This code cannot be used.")
        raise Conflict("An organization with code {code} already exists.", code=code)
    now = utcnow()
    org = Organization(
        code=code,
        name=name,
        level=level,
        parent_id=parent.id if parent else None,
        path="/",
        created_at=now,
    )
    session.add(org)
    await session.flush()
    org.path = child_path(parent.path if parent else None, org.id)
    await session.execute(
        update(Organization).where(Organization.id == org.id).values(path=org.path)
    )
    view = OrgView(code, name, level, parent_code, org.path)
    await audit.append(
        session,
        [
            AuditFacts(
                now, actor, "organization.create", "organization", code, None, _snapshot(view)
            )
        ],
    )
    return view


def _snapshot(view: OrgView) -> dict[str, str | None]:
    return {
        "code": view.code,
        "name": view.name,
        "level": view.level,
        "parent_code": view.parent_code,
    }


async def list_tree(
    session: AsyncSession, scope: Scope, *, with_counts: bool = True
) -> list[TreeNode]:
    """Every organization in the scope, in tree order, with own and subtree member counts
    (zero without `with_counts`, for pickers that only need the names)."""
    orgs = (
        await session.execute(
            select(
                Organization.id,
                Organization.code,
                Organization.name,
                Organization.level,
                Organization.parent_id,
                Organization.path,
            ).where(scope.clause(Organization.path))
        )
    ).all()
    if not orgs:
        return []
    ids = {row.id for row in orgs}
    own: dict[int, int] = {}
    if with_counts:
        own = dict(
            (
                await session.execute(
                    select(Member.org_id, func.count())
                    .where(
                        Member.org_id.in_(
                            select(Organization.id).where(scope.clause(Organization.path))
                        )
                    )
                    .group_by(Member.org_id)
                )
            ).all()
        )
    parents = {row.id: (row.parent_id if row.parent_id in ids else None) for row in orgs}
    totals = roll_up(own, parents)
    code_of = {row.id: row.code for row in orgs}
    nodes = [
        TreeNode(
            row.code,
            row.name,
            row.level,
            row.path.count("/") - 2,
            own.get(row.id, 0),
            totals[row.id],
            code_of.get(row.parent_id) if row.parent_id else None,
        )
        for row in orgs
    ]
    order = {row.id: tree_sort_key(row.path, code_of) for row in orgs}
    by_code = {row.code: row.id for row in orgs}
    nodes.sort(key=lambda node: order[by_code[node.code]])
    return nodes


def tree_sort_key(path: str, code_of: dict[int, str]) -> tuple[str, ...]:
    """Organizations in tree order: by the codes from the top down to them."""
    return tuple(code_of.get(int(part), "") for part in path.strip("/").split("/"))


async def scope_org_ids(session: AsyncSession, scope: Scope) -> list[int]:
    """The ids of every organization inside the scope."""
    return list(
        (await session.execute(select(Organization.id).where(scope.clause(Organization.path))))
        .scalars()
        .all()
    )


async def parent_code(session: AsyncSession, scope: Scope, org: Organization) -> str | None:
    """The code of an organization's parent, when the parent lies inside the scope."""
    if org.parent_id is None:
        return None
    parent = await session.get_one(Organization, org.parent_id)
    return parent.code if scope.covers(parent.path) else None


async def count_orgs(session: AsyncSession, scope: Scope) -> int:
    """How many organizations lie inside the scope."""
    count = await session.scalar(
        select(func.count()).select_from(Organization).where(scope.clause(Organization.path))
    )
    return int(count or 0)
