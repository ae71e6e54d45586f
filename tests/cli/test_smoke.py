"""The app starts, answers its health check, and knows who calls it."""

from __future__ import annotations

from typing import Any

from tests.support.world import World


async def test_health(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_me(client: Any, world: World) -> None:
    response = await client.get("/api/v1/me", headers=world.auth("reviewer", "b"))
    assert response.status == 200
    body = await response.json()
    assert body["role"] == "reviewer" and body["org_code"] == "b"
