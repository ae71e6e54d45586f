"""The webhook API and the events as openapi.yaml documents them: every answer checked against
its schema (no undocumented field), every event body against its schema under `webhooks`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client
from tests.support.databases import Db
from tests.support.matrix_seed import make_session, seed_matrix
from tests.support.openapi_check import _inline, check, load_spec, validate_json
from tests.support.webhooks import Receiver, all_decided, wait_for
from tests.support.world import World

EVERY_SESSION_EVENT = [
    "session.scheduled",
    "session.started",
    "session.ended",
    "session.finalized",
    "session.approved",
    "report.stored",
    "plan.filed",
]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


async def test_the_webhook_api_answers_as_documented(
    client: Client, db: Db, world: World, spec: dict[str, Any], receiver: Receiver
) -> None:
    await seed_matrix(db)
    admin = world.auth("admin", "a")
    body = {"url": await receiver.start(), "events": EVERY_SESSION_EVENT, "org_code": "a"}
    created = await check(client, spec, "post", "/api/v1/webhooks", 201, json=body, headers=admin)
    receiver.secrets.append(created["secret"])
    ref = created["id"]
    await check(client, spec, "get", "/api/v1/webhooks", 200, headers=admin)
    await check(client, spec, "get", f"/api/v1/webhooks/{ref}", 200, headers=admin)
    await check(
        client, spec, "get", f"/api/v1/webhooks/{ref}", 404, headers=world.auth("admin", "b")
    )
    await check(client, spec, "get", "/api/v1/webhooks/nosuch", 404, headers=admin)
    await check(client, spec, "get", f"/api/v1/webhooks/{ref}", 403, headers=world.auth("operator"))
    await check(client, spec, "get", f"/api/v1/webhooks/{ref}", 401)
    await check(client, spec, "put", f"/api/v1/webhooks/{ref}", 200, json=body, headers=admin)
    await check(
        client,
        spec,
        "put",
        f"/api/v1/webhooks/{ref}",
        422,
        json={**body, "events": []},
        headers=admin,
    )
    # Events of every kind that has a schema: a session's life, a stored report, a filed plan.
    public_id = await make_session(db, "approved")
    report = await client.post(
        "/api/v1/reports/monthly/snapshots", json={"org": "a", "month": "2026-03"}, headers=admin
    )
    assert report.status in (200, 201), await report.text()
    filed = await client.post("/api/v1/plans/a1/2026/file", headers=admin)
    assert filed.status == 200, await filed.text()
    await wait_for(lambda: len(receiver.received) >= 7, "seven events")
    await wait_for(lambda: all_decided(db, ref), "the outcomes to be stored")
    assert receiver.unverified == []
    for got in receiver.received:
        event = spec["webhooks"][got.body["type"]]["post"]
        schema = _inline(spec, event["requestBody"]["content"]["application/json"]["schema"])
        validate_json(got.body, schema)
        for parameter in _inline(spec, event["parameters"]):
            assert got.headers.get(parameter["name"]), parameter["name"]
    lesson = [r.body for r in receiver.received if r.body["type"].startswith("session.")]
    assert [b["type"] for b in lesson] == EVERY_SESSION_EVENT[:5]
    assert {b["data"]["session_id"] for b in lesson} == {public_id}
    log = await check(client, spec, "get", f"/api/v1/webhooks/{ref}/deliveries", 200, headers=admin)
    delivery = log["deliveries"][0]["id"]
    replay = f"/api/v1/webhooks/{ref}/deliveries/{delivery}/replay"
    await check(client, spec, "post", replay, 200, headers=admin)
    await wait_for(lambda: len(receiver.received) >= 8, "the replay")
    assert receiver.received[-1].msg_id == log["deliveries"][0]["msg_id"]
    await check(
        client, spec, "post", f"/api/v1/webhooks/{ref}/deliveries/0/replay", 404, headers=admin
    )
    await check(client, spec, "post", f"/api/v1/webhooks/{ref}/rotate", 200, headers=admin)
    await check(client, spec, "delete", f"/api/v1/webhooks/{ref}", 200, headers=admin)
    await check(client, spec, "delete", f"/api/v1/webhooks/{ref}", 404, headers=admin)
