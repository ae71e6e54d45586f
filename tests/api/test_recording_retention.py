"""Recordings are kept HETANG_RECORDING_RETENTION_DAYS (issue 15): the workflow clock's round
marks older finished recordings deleted (audited, with the reason) and removes their files;
newer ones, and recordings still being made, stay. The recordings page says what they take."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import AuditEntry, Recording
from server.settings import Settings
from server.workflow_clock import expire_recordings
from tests.support.class_workflow import page
from tests.support.recordings import add_recording
from tests.support.sessions import live_session
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


async def add(db: Db, session_id: str, name: str, days_ago: int, *, ended: bool = True) -> None:
    await add_recording(
        db,
        session_id,
        name,
        NOW - timedelta(days=days_ago),
        length=timedelta(hours=2) if ended else None,
        size=1024 * 1024 * 1024,
    )


async def test_recordings_past_their_retention_are_deleted(
    aiohttp_client: Any, world: World, db: Db, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(replace(settings, recording_retention_days=30)))
    session_id, _ = await live_session(client, world)
    home = settings.recordings_home
    home.mkdir(parents=True)
    for name, days_ago, ended in (
        ("old.webm", 31, True),
        ("new.webm", 29, True),
        ("on.webm", 40, False),
    ):
        (home / name).write_bytes(b"webm")
        await add(db, session_id, name, days_ago, ended=ended)
    html = await page(client, f"/sessions/{session_id}/recordings", world.auth("reviewer", "a"))
    space = html.split("data-space>")[1].split("</p>")[0]
    assert "全部录像共占用 2.0 GB。" in space and "录像保留 30 天。" in space
    assert "GB。" in space.split("录像所在磁盘剩余 ")[1]

    await expire_recordings(client.server.app, NOW)
    assert sorted(path.name for path in home.iterdir()) == ["new.webm", "on.webm"]
    async with db() as session:
        deleted = {
            row.file_name: row.deleted_at is not None
            for row in await session.scalars(select(Recording))
        }
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "session.recording_delete")
            )
        )
    assert deleted == {"old.webm": True, "new.webm": False, "on.webm": False}
    assert [(entry.actor, entry.object_id) for entry in entries] == [("system", session_id)]
    assert "HETANG_RECORDING_RETENTION_DAYS" in (entries[0].note or "")
    await expire_recordings(client.server.app, NOW)  # a second round finds nothing more
    async with db() as session:
        assert (
            len(
                list(
                    await session.scalars(
                        select(AuditEntry).where(AuditEntry.action == "session.recording_delete")
                    )
                )
            )
            == 1
        )


async def test_zero_days_keeps_every_recording(
    aiohttp_client: Any, world: World, db: Db, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(replace(settings, recording_retention_days=0)))
    session_id, _ = await live_session(client, world)
    settings.recordings_home.mkdir(parents=True)
    (settings.recordings_home / "ancient.webm").write_bytes(b"webm")
    await add(db, session_id, "ancient.webm", 3000)
    await expire_recordings(client.server.app, NOW)
    assert (settings.recordings_home / "ancient.webm").exists()
    html = await page(client, f"/sessions/{session_id}/recordings", world.auth("reviewer", "a"))
    assert "录像长期保留，直至手动删除。" in html
