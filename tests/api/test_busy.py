"""A process whose database connections are all busy for the pool's whole wait answers 503
with Retry-After (服务器当前繁忙), not a 500, and serves again once one is free (issue 17: a
province's agents arriving at once)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from server.app import create_app
from server.keys import ENGINE_KEY
from server.settings import Settings
from tests.support.world import World


async def test_no_free_connection_is_a_503_with_retry_after(
    aiohttp_client: Any, settings: Settings, world: World
) -> None:
    if settings.is_sqlite:
        pytest.skip("SQLite has no connection pool to exhaust")
    tight = dataclasses.replace(settings, db_pool_size=1, db_pool_timeout_s=0.5)
    client = await aiohttp_client(create_app(tight))
    engine = client.app[ENGINE_KEY]
    held = []  # every connection the pool lends (the background jobs' lock holds one)
    try:
        while True:
            try:
                held.append(await engine.connect())
            except SQLAlchemyTimeout:
                break
        busy = await client.get(
            "/api/v1/sessions", headers={**world.auth("admin"), "Accept-Language": "zh-CN"}
        )
        assert busy.status == 503
        assert busy.headers["Retry-After"] == "5"
        error = (await busy.json())["error"]
        assert error["code"] == "unavailable" and "服务器当前繁忙" in error["message"]
    finally:
        for connection in held:
            await connection.close()
    again = await client.get("/api/v1/sessions", headers=world.auth("admin"))
    assert again.status == 200
