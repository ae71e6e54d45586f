"""Rosters: members drawn from an organization's subtree, a page of roster lines, and a roster
replaced by a CSV file of any length."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Member, Organization, RosterEntry, TrainingSession, Venue
from server.domain.paging import Page, offset
from server.domain.roster_csv import read_roster_file
from server.domain.sessions import RosterLine
from server.services import sessions
from server.services.member_import import ImportRejected
from server.services.organizations import org_named_in
from server.services.session_views import SessionView, load_visible, venues_in


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


async def roster_page(
    session: AsyncSession,
    training: TrainingSession,
    page: int,
    per_page: int,
    venue_scope: Scope | None = None,
) -> Page[RosterRow]:
    """One page of the roster lines by member number, with names (only the lines at the venues
    of `venue_scope` when given)."""
    condition = RosterEntry.session_id == training.id
    if venue_scope is not None:
        condition &= RosterEntry.venue_id.in_(venues_in(venue_scope))
    rows = await session.execute(
        select(Member.member_no, Member.name, Venue.code)
        .join(RosterEntry, RosterEntry.member_id == Member.id)
        .join(Venue, Venue.id == RosterEntry.venue_id)
        .where(condition)
        .order_by(Member.member_no)
        .offset(offset(page, per_page))
        .limit(per_page + 1)
    )
    items = [RosterRow(number, name, venue) for number, name, venue in rows]
    total = await session.scalar(select(func.count()).select_from(RosterEntry).where(condition))
    return Page.fetched(items, page, per_page, int(total or 0))


async def replace_roster(
    session: AsyncSession, scope: Scope, actor: str, public_id: str, file: IO[bytes]
) -> SessionView:
    """A session's roster replaced by a CSV file's lines (member_no, venue), all or none: every
    line is read and checked first (ImportRejected names the bad lines); then the session is
    updated as a whole edit would be, so the same rules hold (the owner, a session not started,
    members only of the caller's subtree or already on the roster) and it is audited."""
    training = await load_visible(session, scope, public_id)
    await sessions.check_owner(session, scope, training)
    fields = await sessions.fields_of(session, training)
    read = read_roster_file(file, fields.venues)
    if read.count:
        raise ImportRejected(read.problems, read.count)
    changed = replace(fields, roster=tuple(read.lines))
    return await sessions.update_session(session, scope, actor, public_id, changed)
