"""The venue wall of a session: each venue's agent and head count, read fresh each time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import CheckIn, RosterEntry, SessionVenue, Venue
from server.domain.venues import is_online
from server.services.sessions import load_visible


@dataclass(frozen=True)
class WallTile:
    """One venue on the wall."""

    code: str
    name: str
    role: str
    online: bool
    last_seen_at: datetime | None
    agent_state: str | None
    queue_depth: int | None
    checked_in: int
    expected: int


async def venue_wall(
    session: AsyncSession, scope: Scope, public_id: str, now: datetime
) -> tuple[str, list[WallTile]]:
    """The session's state and one tile per venue, main venue first."""
    training = await load_visible(session, scope, public_id)
    expected = dict(
        (
            await session.execute(
                select(RosterEntry.venue_id, func.count())
                .where(RosterEntry.session_id == training.id)
                .group_by(RosterEntry.venue_id)
            )
        ).all()
    )
    checked_in = dict(
        (
            await session.execute(
                select(CheckIn.venue_id, func.count(distinct(CheckIn.member_id)))
                .where(CheckIn.session_id == training.id, CheckIn.kind == "in")
                .group_by(CheckIn.venue_id)
            )
        ).all()
    )
    rows = (
        await session.execute(
            select(Venue, SessionVenue.role)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .where(SessionVenue.session_id == training.id)
            .order_by(SessionVenue.role.desc(), Venue.code)
        )
    ).all()
    tiles = [
        WallTile(
            venue.code,
            venue.name,
            role,
            is_online(venue.agent_last_seen_at, now),
            venue.agent_last_seen_at,
            venue.agent_state,
            venue.agent_queue_depth,
            int(checked_in.get(venue.id, 0)),
            int(expected.get(venue.id, 0)),
        )
        for venue, role in rows
    ]
    return training.state, tiles
