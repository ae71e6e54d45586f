"""The venue wall: each venue's agent and head count, and a WebSocket that says when to re-read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests import browser
from tests.conftest import World


async def _session(client: Any, world: World) -> tuple[str, str]:
    admin = world.auth("admin", "a")
    tokens = {}
    for code in ("M", "B"):
        answer = await client.post(
            "/api/v1/venues",
            headers=admin,
            json={"code": code, "name": f"会场{code}", "org_code": "a1"},
        )
        tokens[code] = (await answer.json())["token"]
    for number in ("P1", "P2", "P3"):
        await client.post(
            "/api/v1/members",
            headers=admin,
            json={"member_no": number, "name": "党员", "org_code": "a1", "category": "ordinary"},
        )
    now = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sessions",
        headers=admin,
        json={
            "title": "合堂培训",
            "topic_code": "W",
            "credit_hours": 1,
            "main_venue": "M",
            "branch_venues": ["B"],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "roster": [
                {"member_no": "P1", "venue": "B"},
                {"member_no": "P2", "venue": "B"},
                {"member_no": "P3", "venue": "M"},
            ],
        },
    )
    return (await created.json())["id"], tokens["B"]


async def _check_in(client: Any, token: str, session_id: str, member: str) -> None:
    now = datetime.now(UTC).isoformat()
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "sent_at": now,
            "events": [
                {
                    "event_id": str(uuid.uuid4()),
                    "session_id": session_id,
                    "member_no": member,
                    "kind": "in",
                    "at": now,
                    "source": "scanner",
                }
            ],
        },
    )
    assert (await answer.json())["results"][0]["status"] == "accepted"


async def test_the_wall_counts_heads_and_agents(client: Any, world: World) -> None:
    session_id, branch = await _session(client, world)
    await _check_in(client, branch, session_id, "P1")
    await _check_in(client, branch, session_id, "P1")  # the same person twice counts once
    await client.post(
        "/api/v1/agent/heartbeat",
        headers={"Authorization": f"Bearer {branch}"},
        json={"state": "idle", "session_id": session_id, "queue_depth": 2, "agent_version": "1"},
    )
    answer = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
    )
    body = await answer.json()
    assert body["state"] == "scheduled"
    assert [
        (v["code"], v["role"], v["online"], v["checked_in"], v["expected"], v["queue_depth"])
        for v in body["venues"]
    ] == [("M", "main", False, 0, 1, None), ("B", "branch", True, 1, 2, 2)]
    hidden = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "b")
    )
    assert hidden.status == 404


async def test_the_live_socket_says_when_to_reread(client: Any, world: World, db: Any) -> None:
    session_id, branch = await _session(client, world)
    await browser.add_user(db, "op-wall", "operator", "a")
    async with browser.Browser(client) as page:
        await page.signed_in("op-wall")
        async with page.request("GET", f"/sessions/{session_id}/console") as response:
            html = await response.text()
        assert response.status == 200 and "会场总览" in html and "会场B" in html
        async with page.session.ws_connect(f"/sessions/{session_id}/live") as socket:
            await asyncio.sleep(0.1)
            await _check_in(client, branch, session_id, "P2")
            message = await asyncio.wait_for(socket.receive_json(), timeout=10)
        assert message == {"type": "wall_changed"}
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with page.session.ws_connect(
                f"/sessions/{session_id}/live", headers={"Origin": "http://evil.example"}
            ):
                pass
