"""Broadcasts through the real API, for the tests of the relay's routes: venues, a session
running now, the operator publishing an aiortc peer, and the audit entries it left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiortc import RTCPeerConnection
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passthrough.peer import IceSettings
from server.db.models import AuditEntry
from tests.support.rtc_peers import LOOPBACK, description, offer_to_publish
from tests.support.world import World


async def add_venue(client: Any, world: World, code: str, org_code: str = "a1") -> str:
    answer = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "a"),
        json={"code": code, "name": f"会场{code}", "org_code": org_code},
    )
    assert answer.status == 201, await answer.text()
    token: str = (await answer.json())["token"]
    return token


async def add_session(
    client: Any, world: World, main: str, branches: list[str], **extra: Any
) -> str:
    """A session of a1 running from five minutes ago for two hours (unless `extra` changes any
    field, e.g. starts_at or replay_of), scheduled by operator-a; its id."""
    now = datetime.now(UTC)
    answer = await client.post(
        "/api/v1/sessions",
        headers=world.auth("operator", "a"),
        json={
            "title": "党的二十届四中全会精神专题学习",
            "topic_code": "LIVE",
            "credit_hours": 2,
            "main_venue": main,
            "branch_venues": branches,
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            **extra,
        },
    )
    assert answer.status == 201, await answer.text()
    session_id: str = (await answer.json())["id"]
    return session_id


async def audit_count(db: async_sessionmaker[AsyncSession], action: str) -> int:
    async with db() as session:
        return int(
            await session.scalar(select(func.count()).where(AuditEntry.action == action)) or 0
        )


async def publish(
    client: Any,
    world: World,
    session_id: str,
    ice: IceSettings = LOOPBACK,
    publisher: RTCPeerConnection | None = None,
) -> Any:
    """Operator-a publishes an aiortc peer (its ICE on `ice`; or this one, its offer made);
    the peer, negotiated."""
    publisher = publisher or await offer_to_publish(ice)
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/broadcast",
        headers=world.auth("operator", "a"),
        json={"sdp": publisher.localDescription.sdp, "type": "offer"},
    )
    assert answer.status == 200, await answer.text()
    await publisher.setRemoteDescription(description(await answer.json()))
    return publisher
