"""JSON bodies whose strings are not Unicode text (a lone UTF-16 surrogate written as an escape,
"\\ud800") answer 422 `invalid` and store nothing (security review, issue 11, finding 9: the
database driver used to raise, a 500, on 9 of 10 endpoints)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import Member, Organization, Venue
from tests.support.client import Client
from tests.support.world import World

LONE = "\\ud800"  # the six characters of a JSON escape, not a Python surrogate
LONE_LOW = "\\udfff"

USER_CALLS = [
    (
        "/api/v1/organizations",
        '{"code": "sx", "name": "党委%s", "level": "committee", "parent_code": "a"}',
    ),
    (
        "/api/v1/members",
        '{"member_no": "S1", "name": "张%s", "org_code": "a1", "category": "ordinary"}',
    ),
    ("/api/v1/venues", '{"code": "sv", "name": "会场%s", "org_code": "a1"}'),
    # In a key rather than a value.
    ("/api/v1/venues", '{"code": "sv", "name": "会场", "org_code": "a1", "x%s": 1}'),
]
AGENT_CALLS = [
    ("/api/v1/agent/hello", '{"agent_version": "1.0", "hostname": "room%s"}'),
    (
        "/api/v1/agent/heartbeat",
        '{"state": "idle", "session_id": null, "queue_depth": 0, "agent_version": "1%s"}',
    ),
]


async def stored(db: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with db() as session:
        venue = (await session.execute(select(Venue).where(Venue.code == "v-text"))).scalar_one()
        return {
            "organizations": await session.scalar(select(func.count()).select_from(Organization)),
            "members": await session.scalar(select(func.count()).select_from(Member)),
            "venues": await session.scalar(select(func.count()).select_from(Venue)),
            "agent": (venue.agent_last_seen_at, venue.agent_version, venue.agent_hostname),
        }


async def send(client: Client, path: str, body: str, headers: dict[str, str]) -> Any:
    answer = await client.post(
        path,
        data=body.encode("utf-8"),
        headers={**headers, "Content-Type": "application/json", "Accept-Language": "en"},
    )
    return answer.status, await answer.json()


@pytest.mark.parametrize("escape", [LONE, LONE_LOW, LONE + "x", "\\ude00\\ud83d"])
async def test_lone_surrogates_are_refused_everywhere_and_store_nothing(
    client: Client, db: async_sessionmaker[AsyncSession], world: World, escape: str
) -> None:
    admin = world.auth("admin", "a")
    made = await client.post(
        "/api/v1/venues", headers=admin, json={"code": "v-text", "name": "会场", "org_code": "a1"}
    )
    agent = {"Authorization": f"Bearer {(await made.json())['token']}"}
    before = await stored(db)
    calls = [(path, body, admin) for path, body in USER_CALLS]
    calls += [(path, body, agent) for path, body in AGENT_CALLS]
    for path, body, headers in calls:
        status, answer = await send(client, path, body % escape, headers)
        assert status == 422, (path, status, answer)
        assert answer["error"]["code"] == "invalid", answer
        assert "Unicode" in answer["error"]["message"], answer
    assert await stored(db) == before


async def test_a_surrogate_pair_is_text_and_kept(
    client: Client, db: async_sessionmaker[AsyncSession], world: World
) -> None:
    """An escaped pair is one character (😀) and is welcome."""
    admin = world.auth("admin", "a")
    status, answer = await send(
        client,
        "/api/v1/venues",
        '{"code": "v-pair", "name": "会场\\ud83d\\ude00", "org_code": "a1"}',
        admin,
    )
    assert status == 201, answer
    assert answer["name"] == "会场😀"
    async with db() as session:
        name = await session.scalar(select(Venue.name).where(Venue.code == "v-pair"))
    assert name == "会场😀"
