"""Whether the database answers (the health check)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def database_answers(session: AsyncSession) -> None:
    """Run the cheapest query there is; raises when the database is unreachable."""
    await session.execute(text("SELECT 1"))
