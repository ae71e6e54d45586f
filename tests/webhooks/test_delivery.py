"""Signed event callbacks end to end, on a real app and a real receiver on 127.0.0.1: every
delivery verified with the `standardwebhooks` library, in order per session, retried after
5xx, never after a 4xx, kept while the receiver is down and the endpoint disabled after the
limit."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from server.db.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from server.db.session import read_session
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.matrix_seed import seed_matrix, session_at
from tests.support.procs import free_port
from tests.support.webhooks import Receiver, all_decided, wait_for
from tests.support.world import World

SESSION_EVENTS = [
    "session.scheduled",
    "session.changed",
    "session.started",
    "session.ended",
    "session.finalized",
]


async def register(
    client: Client, world: World, url: str, events: list[str], org: str = "a"
) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": events, "org_code": org},
        headers=world.auth("admin", "a"),
    )
    assert answer.status == 201, await answer.text()
    created: dict[str, Any] = await answer.json()
    assert created["secret"].startswith("whsec_")
    return created


async def schedule(client: Client, world: World, fresh: str) -> str:
    answer = await client.post(
        "/api/v1/sessions", json=session_at("VEN-A", fresh), headers=world.auth("operator", "a")
    )
    assert answer.status == 201, await answer.text()
    public_id: str = (await answer.json())["id"]
    return public_id


async def deliveries(db: Db, endpoint_id: int) -> list[WebhookDelivery]:
    async with read_session(db) as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
        return list(rows)


async def test_every_event_of_a_session_arrives_signed_and_in_order(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    created = await register(client, world, await receiver.start(), SESSION_EVENTS)
    receiver.secrets.append(created["secret"])
    public_id = await schedule(client, world, "1")
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    changed = await client.put(
        f"/api/v1/sessions/{public_id}",
        json={**session_at("VEN-A", "1"), "title": "改过的"},
        headers=operator,
    )
    assert changed.status == 200, await changed.text()
    for action, who in (("start", operator), ("end", operator), ("finalize", reviewer)):
        answer = await client.post(f"/api/v1/sessions/{public_id}/{action}", headers=who)
        assert answer.status == 200, await answer.text()
    # A session of subtree b is none of this endpoint's business.
    other = await client.post(
        "/api/v1/sessions",
        json={**session_at("VEN-B", "2"), "roster": [{"member_no": "M-B-1", "venue": "VEN-B"}]},
        headers=world.auth("operator", "b"),
    )
    assert other.status == 201
    await wait_for(lambda: len(receiver.received) >= len(SESSION_EVENTS), "five deliveries")
    assert receiver.unverified == []
    assert receiver.types() == SESSION_EVENTS
    assert {r.body["data"]["session_id"] for r in receiver.received} == {public_id}
    assert receiver.received[1].body["data"]["changed"] == ["title"]
    assert receiver.received[-1].body["data"]["state"] == "finalized"
    assert len({r.msg_id for r in receiver.received}) == len(SESSION_EVENTS)
    assert all(r.msg_id.startswith("msg_") for r in receiver.received)
    await wait_for(lambda: all_decided(db, created["id"]), "the outcomes to be stored")
    stored = await deliveries(db, created["id"])
    assert [row.status for row in stored] == ["delivered"] * len(SESSION_EVENTS)
    assert [row.attempts for row in stored] == [1] * len(SESSION_EVENTS)
    # The log shows them, newest first, and never the secret.
    log = await client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", headers=world.auth("admin", "a")
    )
    text = await log.text()
    assert log.status == 200 and created["secret"] not in text
    assert [d["type"] for d in (await log.json())["deliveries"]] == SESSION_EVENTS[::-1]


async def test_a_receiver_failing_three_times_gets_the_event_once_more_after_recovery(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    receiver.script = [500, 500, 500]
    created = await register(client, world, await receiver.start(), ["session.scheduled"])
    receiver.secrets.append(created["secret"])
    await schedule(client, world, "1")
    await wait_for(lambda: len(receiver.received) >= 4, "four attempts")
    await wait_for(lambda: all_decided(db, created["id"]), "the outcome to be stored", limit_s=10)
    # Nothing more arrives once it was taken.
    await _settle()
    assert [r.status for r in receiver.received] == [500, 500, 500, 200]
    assert len({r.msg_id for r in receiver.received}) == 1
    assert receiver.unverified == []
    (row,) = await deliveries(db, created["id"])
    assert (row.status, row.attempts, row.last_status) == ("delivered", 4, 200)


async def _settle() -> None:
    """A few of the worker's rounds (its poll is 0.1 s in these tests): time for anything more
    to arrive that should not."""
    await asyncio.sleep(1.0)


async def test_a_client_error_is_not_retried_but_429_is_after_its_retry_after(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    receiver.script, receiver.retry_after = [400], None
    created = await register(client, world, await receiver.start(), ["session.scheduled"])
    receiver.secrets.append(created["secret"])
    await schedule(client, world, "1")
    await wait_for(lambda: all_decided(db, created["id"]), "the 400 to be stored")
    await _settle()
    assert [r.status for r in receiver.received] == [400]
    (row,) = await deliveries(db, created["id"])
    assert (row.status, row.attempts, row.last_status) == ("failed", 1, 400)

    receiver.script, receiver.retry_after = [429], "1"
    await schedule(client, world, "2")
    await wait_for(lambda: len(receiver.received) >= 3, "the retry after 429")
    first, second = receiver.received[1], receiver.received[2]
    assert (first.status, second.status, first.msg_id) == (429, 200, second.msg_id)
    waited = int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"])
    assert waited >= 1, "Retry-After: 1 was not honoured"


async def test_a_receiver_down_all_along_loses_nothing_and_its_endpoint_is_disabled(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    port = free_port()  # nobody listens there yet
    url = f"http://127.0.0.1:{port}/hook"
    created = await register(client, world, url, ["session.scheduled", "session.started"])
    receiver.secrets.append(created["secret"])
    first = await schedule(client, world, "1")
    second = await schedule(client, world, "2")
    started = await client.post(f"/api/v1/sessions/{first}/start", headers=world.auth("admin"))
    assert started.status == 200

    async def disabled() -> bool:
        async with read_session(db) as session:
            endpoint = await session.get_one(WebhookEndpoint, created["id"])
            return not endpoint.enabled

    await wait_for(disabled, "the endpoint to be disabled", limit_s=20)
    rows = await deliveries(db, created["id"])
    assert [row.status for row in rows] == ["pending"] * 3
    # The first of each session was tried; the session's second waits behind its first.
    assert [row.attempts >= 1 for row in rows] == [True, True, False]
    assert all("Connect" in (row.last_error or "") for row in rows[:2])
    async with read_session(db) as session:
        endpoint = await session.get_one(WebhookEndpoint, created["id"])
        notices = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "webhook.disable", AuditEntry.object_id == str(endpoint.id))
        )
    assert (endpoint.disabled_reason, notices) == ("failing", 1)
    shown = await client.get(f"/api/v1/webhooks/{created['id']}", headers=world.auth("admin"))
    body = await shown.json()
    assert (body["enabled"], body["disabled_reason"]) == (False, "failing")
    # A disabled endpoint gets no new events; once enabled again, what it kept arrives in order.
    await schedule(client, world, "3")
    await receiver.start(port)
    enabled = await client.put(
        f"/api/v1/webhooks/{created['id']}",
        json={"url": url, "events": ["session.scheduled", "session.started"], "org_code": "a"},
        headers=world.auth("admin"),
    )
    assert enabled.status == 200, await enabled.text()
    await wait_for(lambda: len(receiver.received) >= 3, "the kept deliveries")
    await _settle()
    assert receiver.unverified == []
    got = [(r.body["type"], r.body["data"]["session_id"]) for r in receiver.received]
    assert sorted(got) == sorted(
        [("session.scheduled", first), ("session.scheduled", second), ("session.started", first)]
    )
    assert got.index(("session.scheduled", first)) < got.index(("session.started", first))
    assert len(got) == 3


async def test_after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    client: Client, db: Db, world: World, receiver: Receiver
) -> None:
    await seed_matrix(db)
    created = await register(client, world, await receiver.start(), ["session.scheduled"])
    rotated = await client.post(
        f"/api/v1/webhooks/{created['id']}/rotate", headers=world.auth("admin")
    )
    assert rotated.status == 200
    body = await rotated.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_until"] is not None
    receiver.secrets.extend([created["secret"], body["secret"]])
    await schedule(client, world, "1")
    await wait_for(lambda: receiver.received, "a delivery")
    assert receiver.unverified == []
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2
    again = await client.get(f"/api/v1/webhooks/{created['id']}", headers=world.auth("admin"))
    assert "secret" not in await again.json()
