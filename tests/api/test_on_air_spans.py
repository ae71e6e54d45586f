"""Up-time past the broadcast's end (issue 13, item 3) through the real app: 开始直播 and 结束直播
are kept as on-air spans (a republish is the same span), and a branch venue's samples vouch only
for them: an agent whose `good` samples ran on after 结束直播, or that reported through a pause
between two broadcasts, is not verified for that time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import BroadcastSpan, SessionVenue, TrainingSession, Venue
from server.domain.times import epoch
from tests.support.broadcast_api import publish
from tests.support.client import Client
from tests.support.sessions import live_session
from tests.support.stream_stats import review_page, timeline_block, timeline_spans
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only  # the relay runs in the app's own loop, as in test_broadcast

Db = async_sessionmaker[AsyncSession]
ON_AIR_S = 2.0  # each broadcast lasts at least this long


async def _spans(db: Db, session_id: str) -> list[tuple[datetime, datetime | None]]:
    async with db() as session:
        rows = await session.execute(
            select(BroadcastSpan.started_at, BroadcastSpan.ended_at)
            .join(TrainingSession, TrainingSession.id == BroadcastSpan.session_id)
            .where(TrainingSession.public_id == session_id)
            .order_by(BroadcastSpan.started_at)
        )
        return [(a, b) for a, b in rows]


async def _broadcast(client: Client, world: World, session_id: str, peers: list[Any]) -> None:
    """开始直播, the publisher dropping and coming back (a republish), then 结束直播."""
    first = await publish(client, world, session_id)
    peers.append(first)
    await first.close()
    peers.append(await publish(client, world, session_id))
    await asyncio.sleep(ON_AIR_S)
    ended = await client.delete(
        f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
    )
    assert ended.status == 200, await ended.text()


async def test_samples_vouch_only_while_the_broadcast_was_on_air(
    client: Client, world: World, db: Db
) -> None:
    session_id, tokens = await live_session(client, world)
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    peers: list[Any] = []
    try:
        await _broadcast(client, world, session_id, peers)
        (only,) = await _spans(db, session_id)
        assert only[1] is not None  # the republish did not open a second span
        await asyncio.sleep(1.5)  # off air between the two broadcasts
        await _broadcast(client, world, session_id, peers)
    finally:
        for peer in peers:
            await peer.close()
    spans = await _spans(db, session_id)
    assert len(spans) == 2 and all(end is not None for _, end in spans), spans
    closed = [(epoch(a), epoch(b)) for a, b in spans if b is not None]
    gap = closed[1][0] - closed[0][1]
    assert gap >= 1, closed
    # B's agent said `good` every 5 s from before the first broadcast until 20 s after the last
    # (its clock, the server's: no offset), through the pause between them.
    first_at = datetime.fromtimestamp(closed[0][0] - 10, UTC)
    good = [
        {"at": (first_at + timedelta(seconds=5 * k)).isoformat(), "state": "good", "fps": 25}
        for k in range((closed[1][1] + 20 - closed[0][0] + 10) // 5 + 1)
    ]
    answer = await client.post(
        "/api/v1/agent/stream-stats",
        headers={"Authorization": f"Bearer {tokens['B']}"},
        json={
            "sent_at": datetime.now(UTC).isoformat(),
            "clock_offset_ms": 0,
            "session_id": session_id,
            "samples": good,
        },
    )
    assert answer.status == 200, await answer.text()
    for action in ("start", "end", "finalize"):
        headers = reviewer if action == "finalize" else operator
        answer = await client.post(f"/api/v1/sessions/{session_id}/{action}", headers=headers)
        assert answer.status == 200, await answer.text()
    on_air = sum(end - start for start, end in closed)
    async with db() as session:
        up = await session.scalar(
            select(SessionVenue.up_seconds)
            .join(Venue, Venue.id == SessionVenue.venue_id)
            .join(TrainingSession, TrainingSession.id == SessionVenue.session_id)
            .where(TrainingSession.public_id == session_id, Venue.code == "B")
        )
    # Exactly the time on air: not the pause between the broadcasts, not the 20 s after.
    assert up == on_air, (up, closed)
    # The review page's timeline shows the same: good while on air, 未直播 between and around.
    html = await review_page(client, db, session_id)
    assert "</svg>未直播</li>" in html  # the legend explains the colour
    states = [state for state, _ in timeline_spans(timeline_block(html, "B"))]
    assert states[:4] == ["off_air", "good", "off_air", "good"], states
    assert set(states[4:]) <= {"off_air", "ended"}, states
