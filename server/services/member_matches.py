"""How many members a search on the members page matches, counted up to a cap (a name search
scans the members of the subtree; beyond the cap "more than" says enough)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Member, Organization
from server.services.members import matching, subtree_ids

MATCH_CAP = 10_001


async def count_matches(
    session: AsyncSession, scope: Scope, query: str, org: Organization | None
) -> int:
    """Members inside the scope (and the organization's subtree) the search matches, at most
    MATCH_CAP: the same condition search_members pages through."""
    ids = subtree_ids(scope, org)
    condition: ColumnElement[bool] = true() if ids is None else Member.org_id.in_(ids)
    query = query.strip()
    if query:
        condition = condition & matching(query)
    capped = select(literal(1)).select_from(Member).where(condition).limit(MATCH_CAP).subquery()
    count = await session.scalar(select(func.count()).select_from(capped))
    return int(count or 0)
