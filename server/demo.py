"""Placeholder; replaced by the demo city seeder."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class DemoRefused(Exception):
    """The database is not empty."""


async def seed_demo(
    factory: async_sessionmaker[AsyncSession], progress: Callable[[str], None]
) -> list[str]:
    """Fill an empty database with a demo city; return the lines that name the demo logins."""
    raise DemoRefused("not yet")
