"""Reading rosters: members drawn from an organization's subtree, and a page of roster lines."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Member, Organization, RosterEntry, TrainingSession, Venue
from server.domain.sessions import RosterLine
from server.services.organizations import org_named_in


async def members_of_subtree(
    session: AsyncSession, scope: Scope, org_code: str, venue: str
) -> list[RosterLine]:
    """Roster lines for every member of an organization's subtree, all at one venue."""
    org = await org_named_in(session, scope, org_code)
    numbers = (
        (
            await session.execute(
                select(Member.member_no)
                .join(Organization, Organization.id == Member.org_id)
                .where(Organization.path.startswith(org.path, autoescape=True))
                .order_by(Member.member_no)
            )
        )
        .scalars()
        .all()
    )
    return [RosterLine(number, venue) for number in numbers]


@dataclass(frozen=True)
class RosterRow:
    """One roster line as the session page shows it."""

    member_no: str
    name: str
    venue: str


async def roster_preview(
    session: AsyncSession, training: TrainingSession, limit: int
) -> list[RosterRow]:
    """The first `limit` roster lines by member number, with names."""
    rows = await session.execute(
        select(Member.member_no, Member.name, Venue.code)
        .join(RosterEntry, RosterEntry.member_id == Member.id)
        .join(Venue, Venue.id == RosterEntry.venue_id)
        .where(RosterEntry.session_id == training.id)
        .order_by(Member.member_no)
        .limit(limit)
    )
    return [RosterRow(number, name, venue) for number, name, venue in rows]
