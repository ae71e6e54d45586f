"""`venue.down` and `venue.recovered` come from a branch venue's stream samples while its session
is live and on air, once each, however often the agent sends the same batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from server.db.session import write_session
from server.services import broadcasts
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.matrix_seed import seed_matrix, session_at
from tests.support.stream_stats import post_samples
from tests.support.webhooks import Receiver, wait_for
from tests.support.world import World


def sample(at: datetime, state: str) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "state": state,
        "bitrate_kbps": 0 if state == "down" else 1200,
        "fps": 0 if state == "down" else 25,
        "loss_pct": 0,
        "jitter_ms": 5,
        "freezes": 0,
        "frames_decoded": 0 if state == "down" else 125,
    }


async def test_a_branch_venue_going_down_and_back_is_told_once_each(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    admin, operator = world.auth("admin", "a"), world.auth("operator", "a")
    venue = await client.post(
        "/api/v1/venues", json={"code": "V-BR", "name": "分会场", "org_code": "a1"}, headers=admin
    )
    token = (await venue.json())["token"]
    created = await client.post(
        "/api/v1/webhooks",
        json={
            "url": await receiver.start(),
            "events": ["venue.down", "venue.recovered"],
            "org_code": "a",
        },
        headers=admin,
    )
    receiver.secrets.append((await created.json())["secret"])
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        **session_at("VEN-A", "1"),
        "starts_at": (now - timedelta(minutes=10)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "branch_venues": ["V-BR"],
    }
    scheduled = await client.post("/api/v1/sessions", json=body, headers=operator)
    public_id = (await scheduled.json())["id"]
    # Down before the broadcast is on air: planned, no event.
    assert await post_samples(
        client, token, public_id, [sample(now - timedelta(seconds=60), "down")]
    )
    started = await client.post(f"/api/v1/sessions/{public_id}/start", headers=operator)
    assert started.status == 200
    async with write_session(db) as session:
        await broadcasts.record(session, "test", public_id, "start", now - timedelta(seconds=50))
    states = ["good", "good", "down", "down", "degraded", "good"]
    batch = [sample(now - timedelta(seconds=40 - 5 * i), s) for i, s in enumerate(states)]
    assert await post_samples(client, token, public_id, batch) == len(states)
    assert await post_samples(client, token, public_id, batch) == 0  # the same batch again
    await wait_for(lambda: len(receiver.received) >= 2, "two events")
    await asyncio.sleep(0.5)  # a few of the worker's rounds: nothing more comes
    assert receiver.unverified == []
    # Down before going on air was by plan: on air, down and back.
    got = [(r.body["type"], r.body["data"]["at"]) for r in receiver.received]
    iso = [
        (now - timedelta(seconds=40 - 5 * i)).isoformat().replace("+00:00", "Z") for i in range(6)
    ]
    assert got == [("venue.down", iso[2]), ("venue.recovered", iso[4])]
    assert {r.body["data"]["venue_code"] for r in receiver.received} == {"V-BR"}
    assert {r.body["data"]["session_id"] for r in receiver.received} == {public_id}
