"""What venue agents tell the server about themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import AgentVenue
from server.db.models import Venue


async def hello(
    session: AsyncSession, venue: AgentVenue, *, agent_version: str, hostname: str, now: datetime
) -> None:
    """Remember the agent's version and host, and that it was seen now."""
    await session.execute(
        update(Venue)
        .where(Venue.id == venue.venue_id)
        .values(agent_version=agent_version, agent_hostname=hostname, agent_last_seen_at=now)
    )
