"""Live events: an agent listening on its events WebSocket hears when its schedule changes —
from this server process, and (through Redis) from another one."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings
from tests.support.databases import REDIS_ENV
from tests.support.world import World


async def _venue(client: Any, world: World, code: str) -> str:
    answer = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "a"),
        json={"code": code, "name": f"会场{code}", "org_code": "a1"},
    )
    token: str = (await answer.json())["token"]
    return token


def _session(main: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": "专题培训",
        "topic_code": "LIVE",
        "credit_hours": 1,
        "main_venue": main,
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
    }


async def test_the_agent_hears_its_schedule_change(client: Any, world: World) -> None:
    token = await _venue(client, world, "V1")
    other = await _venue(client, world, "V2")
    async with (
        client.ws_connect(
            "/api/v1/agent/events", headers={"Authorization": f"Bearer {token}"}
        ) as socket,
        client.ws_connect(
            "/api/v1/agent/events", headers={"Authorization": f"Bearer {other}"}
        ) as elsewhere,
    ):
        created = await client.post(
            "/api/v1/sessions", headers=world.auth("operator", "a"), json=_session("V1")
        )
        session_id = (await created.json())["id"]
        message = await asyncio.wait_for(socket.receive_json(), timeout=10)
        assert message == {"type": "schedule_changed", "session_id": session_id}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(elsewhere.receive_json(), timeout=0.5)


async def test_the_events_socket_needs_the_venue_token(client: Any, world: World) -> None:
    answer = await client.get("/api/v1/agent/events")
    assert answer.status == 401
    token = await _venue(client, world, "V3")
    plain = await client.get("/api/v1/agent/events", headers={"Authorization": f"Bearer {token}"})
    assert plain.status == 422 and (await plain.json())["error"]["code"] == "invalid"


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set")
async def test_two_processes_share_events_through_redis(
    client: Any, world: World, settings: Settings
) -> None:
    """Two server apps on one Redis: a change made through one reaches an agent on the other."""
    shared = dataclasses.replace(settings, redis_url=os.environ[REDIS_ENV])
    token = await _venue(client, world, "V4")
    async with (
        TestClient(TestServer(create_app(shared))) as first,
        TestClient(TestServer(create_app(shared))) as second,
        second.ws_connect(
            "/api/v1/agent/events", headers={"Authorization": f"Bearer {token}"}
        ) as socket,
    ):
        await asyncio.sleep(0.2)  # the subscription is in place before the change
        created = await first.post(
            "/api/v1/sessions", headers=world.auth("admin", "a"), json=_session("V4")
        )
        assert created.status == 201
        session_id = (await created.json())["id"]
        message = await asyncio.wait_for(socket.receive_json(), timeout=10)
    assert message == {"type": "schedule_changed", "session_id": session_id}


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set")
async def test_two_processes_show_the_same_venue_wall(
    client: Any, world: World, settings: Settings
) -> None:
    """An agent reports to one server process; a reviewer watching the wall on the other is told
    at once (through Redis) and reads the same stream state there."""
    shared = dataclasses.replace(settings, redis_url=os.environ[REDIS_ENV])
    await _venue(client, world, "W1")
    branch = await _venue(client, world, "W2")
    body = {**_session("W1"), "branch_venues": ["W2"]}
    created = await client.post("/api/v1/sessions", headers=world.auth("admin", "a"), json=body)
    session_id = (await created.json())["id"]
    reviewer = world.auth("reviewer", "a")
    async with (
        TestClient(TestServer(create_app(shared))) as first,
        TestClient(TestServer(create_app(shared))) as second,
        second.ws_connect(f"/sessions/{session_id}/live", headers=reviewer) as wall,
    ):
        await asyncio.sleep(0.2)  # the subscription is in place before the report
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        sample = {"at": now, "state": "good", "bitrate_kbps": 950.0, "fps": 29.5, "freezes": 0}
        answer = await first.post(
            "/api/v1/agent/stream-stats",
            headers={"Authorization": f"Bearer {branch}"},
            json={"sent_at": now, "session_id": session_id, "samples": [sample]},
        )
        assert answer.status == 200
        assert await asyncio.wait_for(wall.receive_json(), timeout=10) == {"type": "wall_changed"}
        walls = [
            await (await app.get(f"/api/v1/sessions/{session_id}/wall", headers=reviewer)).json()
            for app in (first, second)
        ]
    assert walls[0] == walls[1]
    stream = walls[1]["venues"][1]["stream"]
    assert (stream["state"], stream["fps"], stream["bitrate_kbps"]) == ("good", 29.5, 950.0)
