"""The recordings page of a session (issue 15, item 2): each recording with its length, size,
the gaps where the picture was away (in Shanghai time), a player and a download of the file;
a disk-full stop and a deleted file said in words; readers of the session only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.settings import Settings
from tests.support.class_workflow import page
from tests.support.recordings import add_recording
from tests.support.sessions import live_session
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
STARTED = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


async def add(
    db: Db,
    session_id: str,
    file_name: str,
    *,
    gaps: list[list[float]],
    problem: str | None = None,
    deleted: bool = False,
) -> str:
    return await add_recording(
        db,
        session_id,
        file_name,
        STARTED,
        size=450 * 1024 * 1024,
        gaps=gaps,
        problem=problem,
        deleted_at=STARTED.replace(hour=3) if deleted else None,
    )


async def test_the_page_shows_each_recording_with_its_gaps(
    client: Any, world: World, db: Db, settings: Settings
) -> None:
    session_id, _ = await live_session(client, world)
    kept = await add(db, session_id, "a.webm", gaps=[[1800.0, 1925.5]])
    full = await add(db, session_id, "b.webm", gaps=[], problem="disk_full")
    gone = await add(db, session_id, "c.webm", gaps=[], deleted=True)
    html = await page(client, f"/sessions/{session_id}/recordings", world.auth("reviewer", "a"))
    card = html.split(f'data-recording="{kept}"')[1].split("</section>")[0]
    assert "时长 60 分钟 · 450.0 MB" in card
    assert "无画面时段：" in card and "09:30:00 至 09:32:05（2 分 6 秒）" in card
    src = f"/api/v1/sessions/{session_id}/recordings/{kept}/file"
    assert f'src="{src}"' in card and f'href="{src}" download' in card
    assert re.search(r'<rect class="tl-down" x="500" y="0" width="34\.8\d*"', card)
    disk = html.split(f'data-recording="{full}"')[1].split("</section>")[0]
    assert "磁盘已满，录制在此处停止；直播本身未受影响。" in disk
    assert "主会场画面全程录制，没有中断。" in disk
    deleted = html.split(f'data-recording="{gone}"')[1].split("</section>")[0]
    assert "录像文件已删除。" in deleted and "<video" not in deleted


async def test_a_session_without_recordings_says_how_they_come(client: Any, world: World) -> None:
    session_id, _ = await live_session(client, world)
    html = await page(client, f"/sessions/{session_id}/recordings", world.auth("operator", "a"))
    assert "本场次还没有录像" in html


@pytest.mark.parametrize(
    ("role", "subtree", "status"), [("reviewer", "b", 404), ("venue_staff", "a", 403)]
)
async def test_only_readers_of_the_session_see_its_recordings(
    client: Any, world: World, db: Db, role: str, subtree: str, status: int
) -> None:
    session_id, _ = await live_session(client, world)
    await add(db, session_id, "a.webm", gaps=[])
    html = await page(
        client, f"/sessions/{session_id}/recordings", world.auth(role, subtree), status
    )
    assert "a.webm" not in html and "/recordings/" not in html.split("<main")[-1]
