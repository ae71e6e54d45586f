"""/metrics: Prometheus text from the app's own registry, served to this machine or with the
metrics token."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings
from tests.support.world import World


def _value(text: str, name: str, labels: str = "") -> float:
    pattern = "^" + re.escape(name) + (r"\{" + labels + r"[^}]*\}" if labels else "") + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"{name} {labels} missing"
    return float(found.group(1))


async def test_metrics_count_requests_checkins_and_agents(client: Any, world: World) -> None:
    admin = world.auth("admin", "a")
    venue = await client.post(
        "/api/v1/venues", headers=admin, json={"code": "V", "name": "会场", "org_code": "a1"}
    )
    agent = {"Authorization": f"Bearer {(await venue.json())['token']}"}
    await client.post(
        "/api/v1/members",
        headers=admin,
        json={"member_no": "P", "name": "张三", "org_code": "a1", "category": "ordinary"},
    )
    now = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sessions",
        headers=admin,
        json={
            "title": "课",
            "topic_code": "T",
            "credit_hours": 1,
            "main_venue": "V",
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "roster": [{"member_no": "P", "venue": "V"}],
        },
    )
    session_id = (await created.json())["id"]
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "session_id": session_id,
            "member_no": number,
            "kind": "in",
            "at": now.isoformat(),
            "source": "scanner",
        }
        for number in ("P", "NOBODY")
    ]
    await client.post(
        "/api/v1/agent/checkins", headers=agent, json={"sent_at": now.isoformat(), "events": events}
    )
    await client.post(
        "/api/v1/agent/heartbeat",
        headers=agent,
        json={"state": "idle", "session_id": None, "queue_depth": 7, "agent_version": "1"},
    )
    answer = await client.get("/metrics")
    assert answer.status == 200 and answer.content_type == "text/plain"
    text = await answer.text()
    assert _value(text, "hetang_checkins_total", 'status="accepted"') == 1
    assert _value(text, "hetang_checkins_total", 'status="rejected"') == 1
    assert _value(text, "hetang_agent_queue_depth", 'venue="V"') == 7
    assert _value(text, "hetang_venues_online") == 1
    assert _value(text, "hetang_sessions", 'state="scheduled"') == 1
    # The app's one process leads the background jobs and has run their first round.
    for _ in range(50):
        text = await (await client.get("/metrics")).text()
        if _value(text, "hetang_background_rounds_total") >= 1:
            break
        await asyncio.sleep(0.1)
    assert _value(text, "hetang_background_leader") == 1
    assert _value(text, "hetang_background_rounds_total") >= 1
    assert (
        _value(
            text,
            "hetang_http_request_seconds_count",
            'method="POST",route="agent_checkins",status="200"',
        )
        == 1
    )


async def test_the_metrics_token(settings: Settings, db: Any) -> None:
    guarded = dataclasses.replace(settings, metrics_token="m" * 24)
    async with TestClient(TestServer(create_app(guarded))) as client:
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 403
        assert (await wrong.json())["error"]["code"] == "forbidden"
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {'m' * 24}"})
        assert right.status == 200
