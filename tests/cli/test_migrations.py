"""Migrations keep every row: a revision that copies a table on SQLite (batch mode) must not
cascade into the rows that point at it, going up or down."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from server.db.migrate import downgrade, upgrade
from tests.support.sessions import schedule_worked_example
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only

CHILD_TABLES = ("training_sessions", "session_venues", "roster_entries", "audit_entries")


def counts(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (our names)
            for table in CHILD_TABLES
        }


async def test_revision_0005_copies_training_sessions_without_losing_a_child_row(
    client: Any, world: World, database_url: str
) -> None:
    await schedule_worked_example(client, world)
    path = database_url.split("///", 1)[-1]
    before = counts(path)
    assert before["session_venues"] == 3 and before["roster_entries"] == 5

    await asyncio.to_thread(downgrade, database_url, "0004")
    assert counts(path) == before
    await asyncio.to_thread(upgrade, database_url)
    assert counts(path) == before
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(training_sessions)")]
        assert "plan_class_id" in columns
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
