"""Datetimes written by the bulk inserts compare exactly like those written by the ORM (on SQLite
they are text: both must be in one format), and revision 0004 brings older rows to that format."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.migrate import downgrade, upgrade
from server.db.models import AuditEntry
from server.db.session import read_session, write_session
from server.domain.audit_chain import AuditFacts
from server.services import audit

# Local midnight of April 1 in Shanghai: a month's boundary, stored as whole seconds.
BOUNDARY = datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC)


async def test_a_bulk_written_datetime_meets_its_boundary(
    db: async_sessionmaker[AsyncSession],
) -> None:
    async with write_session(db) as session:
        await audit.append(
            session, [AuditFacts(BOUNDARY, "test", "test.boundary", "test", "1", None, None)]
        )
    async with read_session(db) as session:
        on_or_after = await session.scalar(select(func.count()).where(AuditEntry.at >= BOUNDARY))
        before = await session.scalar(select(func.count()).where(AuditEntry.at < BOUNDARY))
        stored = await session.scalar(select(AuditEntry.at))
    assert (on_or_after, before) == (1, 0)
    assert stored == BOUNDARY


def test_revision_0004_gives_old_sqlite_rows_the_one_format(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    downgrade(url, "0003")
    with sqlite3.connect(path) as db:
        # As the bulk inserts used to write it: no microseconds.
        db.execute(
            "INSERT INTO audit_entries (id, at, actor, action, object_type, object_id, "
            "prev_hash, hash) VALUES (1, '2026-03-31 16:00:00', 't', 'a', 'o', '1', '', 'x')"
        )
    upgrade(url)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT at FROM audit_entries").fetchall() == [
            ("2026-03-31 16:00:00.000000",)
        ]
