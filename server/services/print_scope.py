"""What a venue's staff may print of a class: the sheets of the venues in their subtree."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Venue
from server.domain.sessions import ClassRef
from server.services.plans import find_class
from server.services.session_views import venues_in


async def venue_codes_in(session: AsyncSession, scope: Scope) -> frozenset[str]:
    """The codes of the venues whose organization lies in the scope."""
    rows = await session.scalars(select(Venue.code).where(Venue.id.in_(venues_in(scope))))
    return frozenset(rows.all())


async def class_in(session: AsyncSession, scope: Scope, ref: ClassRef) -> bool:
    """The class's plan belongs to an organization of the scope."""
    row = await find_class(session, ref)
    return row is not None and scope.covers(row[2].path)
