"""The databases tests run on: SQLite always, PostgreSQL (and Redis) when their URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.pg import fresh_pg_database

PG_ENV = "HETANG_TEST_DATABASE_URL"
REDIS_ENV = "HETANG_TEST_REDIS_URL"
Db = async_sessionmaker[AsyncSession]


def backends() -> list[str]:
    """The database kinds each database test runs on."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def fresh_pg_or_skip(prefix: str) -> Iterator[str]:
    """A fixture's body: a fresh PostgreSQL database, or the test skipped without one."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_pg_database(url, prefix) as target:
        yield target
