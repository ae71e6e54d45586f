"""Two workers of one server (issue 17), in one test process on one database: worker 0 holds
the relay and serves it on its Unix socket, and a broadcast published, watched, shown and ended
entirely through the other worker behaves as it does in one process: the venue decodes, the
wall and the events socket see it on air, the end is audited and its recording stored. A
worker whose relay does not answer says so with a 503."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.models import Recording
from server.keys import BROADCASTS_KEY
from server.rtc.relay_link import RelayPlace
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue, audit_count, publish
from tests.support.rtc_peers import description, offer_to_view
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
async def workers(aiohttp_client: Any, settings: Settings, tmp_path: Path) -> tuple[Any, Any]:
    """(worker 0, worker 1): two apps on the same database and data directory."""
    socket = tmp_path / "relay"
    owner = await aiohttp_client(create_app(settings, RelayPlace(owner=True, socket=socket)))
    other = await aiohttp_client(create_app(settings, RelayPlace(owner=False, socket=socket)))
    return owner, other


async def test_a_broadcast_through_the_other_worker_is_the_relays(
    workers: tuple[Any, Any], world: World, db: async_sessionmaker[AsyncSession]
) -> None:
    owner, other = workers
    await add_venue(other, world, "MAIN")
    branch = await add_venue(other, world, "B1")
    session_id = await add_session(other, world, "MAIN", ["B1"])
    auth = {"Authorization": f"Bearer {branch}"}
    early = await offer_to_view()
    refused = await other.post(
        f"/api/v1/agent/sessions/{session_id}/subscribe",
        headers=auth,
        json={"sdp": early.pc.localDescription.sdp, "type": "offer"},
    )
    await early.close()
    assert refused.status == 409, await refused.text()  # the relay's NotOnAir, named across
    publisher = await publish(other, world, session_id)
    viewer = await offer_to_view()
    try:
        answer = await other.post(
            f"/api/v1/agent/sessions/{session_id}/subscribe",
            headers=auth,
            json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
        )
        assert answer.status == 200, await answer.text()
        await viewer.pc.setRemoteDescription(description(await answer.json()))
        await viewer.frames_after(0, 10)
        # The broadcast lives in worker 0's relay, and worker 1 shows it as it is.
        assert owner.app[BROADCASTS_KEY].status(session_id).subscribers == 1
        wall = await other.get(f"/api/v1/sessions/{session_id}/wall", headers=world.auth("admin"))
        body = await wall.json()
        assert body["broadcast"]["on"] and body["broadcast"]["publishing"]
        assert body["broadcast"]["subscribers"] == 1
        assert body["broadcast"]["recording"]["state"] == "on"
        async with other.ws_connect("/api/v1/agent/events", headers=auth) as events:
            greeting = await asyncio.wait_for(events.receive_json(), timeout=5)
            assert greeting == {"type": "broadcast_started", "session_id": session_id}
        ended = await other.delete(
            f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
        )
        assert ended.status == 200 and await ended.json() == {"on": False}
        assert not owner.app[BROADCASTS_KEY].status(session_id).on
    finally:
        await viewer.close()
        await publisher.close()
    assert await audit_count(db, "session.broadcast_start") == 1
    assert await audit_count(db, "session.broadcast_end") == 1
    async with db() as session:
        [stored] = (await session.scalars(select(Recording))).all()
    assert stored.ended_at is not None and stored.duration_ms and stored.duration_ms > 0


async def test_a_worker_whose_relay_is_away_answers_503(
    aiohttp_client: Any, settings: Settings, world: World, tmp_path: Path
) -> None:
    lonely = await aiohttp_client(
        create_app(settings, RelayPlace(owner=False, socket=tmp_path / "nobody"))
    )
    await add_venue(lonely, world, "MAIN")
    session_id = await add_session(lonely, world, "MAIN", [])
    wall = await lonely.get(f"/api/v1/sessions/{session_id}/wall", headers=world.auth("admin"))
    assert wall.status == 503
    assert (await wall.json())["error"]["code"] == "unavailable"
    chinese = await lonely.get(
        f"/api/v1/sessions/{session_id}/wall",
        headers={**world.auth("admin"), "Accept-Language": "zh-CN"},
    )
    assert "媒体转发进程正在重启" in (await chinese.json())["error"]["message"]
