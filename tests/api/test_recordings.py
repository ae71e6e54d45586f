"""Every broadcast is recorded (issue 15, item 1) through the real app: an aiortc publisher goes on
air, drops, comes back two seconds later and the operator ends the broadcast. One WebM holds it
all, its length the broadcast's, the time away listed as a gap, every frame decoding; the row
stored says so, and starting and stopping the recording are audited."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import Recording
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue, audit_count, publish
from tests.support.openapi_check import check, load_spec
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only
SPEC = load_spec()


async def stored(db: async_sessionmaker[AsyncSession]) -> list[Recording]:
    async with db() as session:
        return list(await session.scalars(select(Recording)))


async def test_a_broadcast_with_a_republish_is_one_recording_with_its_gap(
    client: Any, world: World, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await add_venue(client, world, "MAIN")
    session_id = await add_session(client, world, "MAIN", [])
    started = time.monotonic()
    first = await publish(client, world, session_id)
    await asyncio.sleep(4)
    await first.close()
    await asyncio.sleep(2)
    second = await publish(client, world, session_id)
    await asyncio.sleep(3)
    [open_row] = await stored(db)
    assert open_row.ended_at is None and open_row.duration_ms is None  # stored while on air
    ended = await client.delete(
        f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
    )
    on_air = time.monotonic() - started
    assert ended.status == 200
    await second.close()

    [row] = await stored(db)
    assert row.ended_at is not None and row.problem is None
    assert row.duration_ms is not None and abs(row.duration_ms / 1000 - on_air) < 1.5
    assert len(row.gaps) == 1
    start_s, end_s = row.gaps[0]
    assert 3.0 < start_s < 5.0 and 1.5 < end_s - start_s < 4.0
    path = settings.data_dir / "recordings" / row.file_name
    assert row.bytes == path.stat().st_size > 0
    assert row.file_name.startswith(session_id)
    with av.open(str(path)) as container:
        assert {stream.type for stream in container.streams} == {"video", "audio"}
        duration = (container.duration or 0) / 1_000_000
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(duration - row.duration_ms / 1000) < 0.5
    assert frames > 5 * 15  # aiortc's test track runs at 30 fps; well over half survive
    assert await audit_count(db, "session.recording_start") == 1  # one file across republish
    assert await audit_count(db, "session.recording_stop") == 1

    # The API lists it, serves the file with Range, and lets an administrator delete it.
    listed = await check(
        client,
        SPEC,
        "get",
        f"/api/v1/sessions/{session_id}/recordings",
        200,
        headers=world.auth("reviewer", "a"),
    )
    [item] = listed["recordings"]
    assert item["id"] == row.public_id and item["bytes"] == row.bytes
    assert item["gaps"] == [{"start_s": start_s, "end_s": end_s}]
    whole = await client.get(item["url"], headers=world.auth("reviewer", "a"))
    assert whole.status == 200 and whole.content_type == "video/webm"
    assert await whole.read() == path.read_bytes()
    part = await client.get(
        item["url"], headers={**world.auth("operator", "a"), "Range": "bytes=100-1099"}
    )
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{row.bytes}"
    assert await part.read() == path.read_bytes()[100:1100]
    for role, subtree, status in (("reviewer", "b", 404), ("venue_staff", "a", 403)):
        answer = await client.get(item["url"], headers=world.auth(role, subtree))
        assert answer.status == status, (role, subtree)
    for role, status in (("operator", 403), ("reviewer", 403)):
        refused = await client.delete(
            f"/api/v1/sessions/{session_id}/recordings/{row.public_id}",
            headers=world.auth(role, "a"),
        )
        assert refused.status == status
    assert path.exists()
    await check(
        client,
        SPEC,
        "delete",
        f"/api/v1/sessions/{session_id}/recordings/{row.public_id}",
        200,
        headers=world.auth("admin", "a"),
    )
    assert not path.exists()
    gone = await client.get(item["url"], headers=world.auth("reviewer", "a"))
    assert gone.status == 404
    [deleted] = (
        await (
            await client.get(
                f"/api/v1/sessions/{session_id}/recordings", headers=world.auth("reviewer", "a")
            )
        ).json()
    )["recordings"]
    assert deleted["deleted"] is True and deleted["url"] is None
    assert await audit_count(db, "session.recording_delete") == 1


async def test_a_server_stopping_on_air_stores_its_recording(
    world: World, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        await add_venue(client, world, "MAIN")
        session_id = await add_session(client, world, "MAIN", [])
        publisher = await publish(client, world, session_id)
        await asyncio.sleep(2)
    finally:
        await client.close()  # the server stops with the broadcast on air
    await publisher.close()
    [row] = await stored(db)
    assert row.ended_at is not None and row.duration_ms is not None and row.duration_ms > 1000
    assert row.bytes == (settings.data_dir / "recordings" / row.file_name).stat().st_size
    assert await audit_count(db, "session.recording_stop") == 1


async def test_recording_off_records_nothing(
    aiohttp_client: Any, world: World, db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    client = await aiohttp_client(create_app(replace(settings, recording=False)))
    await add_venue(client, world, "MAIN")
    session_id = await add_session(client, world, "MAIN", [])
    publisher = await publish(client, world, session_id)
    await asyncio.sleep(1)
    await client.delete(
        f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
    )
    await publisher.close()
    assert await stored(db) == []
    assert not (settings.data_dir / "recordings").exists()
