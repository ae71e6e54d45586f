"""Organization details that the broader suites do not pin down."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Organization
from tests.support.world import World


async def test_parent_outside_the_scope_is_not_named(client: Any, world: World) -> None:
    scoped = await client.get("/api/v1/organizations/a", headers=world.auth("reviewer", "a"))
    assert (await scoped.json())["parent_code"] is None
    whole = await client.get("/api/v1/organizations/a", headers=world.auth("admin", "all"))
    assert (await whole.json())["parent_code"] == "city"
    inside = await client.get("/api/v1/organizations/a1a", headers=world.auth("reviewer", "a"))
    assert (await inside.json())["parent_code"] == "a1"


async def test_level_order_error_names_levels_in_words(
    client: Any, world: World, db: async_sessionmaker[AsyncSession]
) -> None:
    body = {"code": "x1", "name": "错层组织", "level": "county", "parent_code": "a1a"}
    chinese = await client.post("/api/v1/organizations", json=body, headers=world.auth("admin"))
    assert chinese.status == 422
    message = (await chinese.json())["error"]["message"]
    assert "县" in message and "党支部" in message and "county" not in message
    english = await client.post(
        "/api/v1/organizations",
        json=body,
        headers={**world.auth("admin"), "Accept-Language": "en"},
    )
    assert "County" in (await english.json())["error"]["message"]
    async with db() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Organization).where(Organization.code == "x1")
            )
            == 0
        )
