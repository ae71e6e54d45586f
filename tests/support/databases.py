"""The databases tests run on: SQLite always, PostgreSQL (and Redis) when their URL is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.session import make_engine

PG_ENV = "HETANG_TEST_DATABASE_URL"
REDIS_ENV = "HETANG_TEST_REDIS_URL"
Db = async_sessionmaker[AsyncSession]


def backends() -> list[str]:
    """The database kinds each database test runs on."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def _pg_admin_url(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def fresh_pg_or_skip(prefix: str) -> Iterator[str]:
    """A fixture's body: a fresh PostgreSQL database, or the test skipped without one."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_pg_database(url, prefix) as target:
        yield target


@contextmanager
def fresh_pg_database(url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `url`; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        engine = make_engine(url)
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_admin_url(url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
