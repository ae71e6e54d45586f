"""Registering endpoints: what is refused (422 naming the field, nothing stored), targets on
loopback and private networks refused unless HETANG_WEBHOOK_ALLOW_PRIVATE, secrets shown only
on creation and rotation, and every change audited without the secret."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient
from sqlalchemy import func, select

from server.app import create_app
from server.db.models import AuditEntry, WebhookEndpoint
from server.db.session import read_session
from server.domain.webhooks import PRIVATE_URL, WebhookSettings
from server.settings import Settings
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World

GOOD = {"url": "http://127.0.0.1:9/hook", "events": ["session.started"], "org_code": "a1"}
BAD = [
    ({**GOOD, "url": "ftp://127.0.0.1/hook"}, "url"),
    ({**GOOD, "url": "http://"}, "url"),
    ({**GOOD, "url": "http://user:pw@127.0.0.1/hook"}, "url"),
    ({**GOOD, "url": 5}, "url"),
    ({**GOOD, "events": []}, "events"),
    ({**GOOD, "events": ["session.exploded"]}, "events"),
    ({**GOOD, "events": "session.started"}, "events"),
    ({**GOOD, "org_code": "nosuch"}, "org_code"),
    ({**GOOD, "org_code": "b1"}, "org_code"),  # another subtree's: as if it did not exist
    ({**GOOD, "enabled": "yes"}, "enabled"),
]


async def stored(db: Db) -> tuple[int, int]:
    async with read_session(db) as session:
        endpoints = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "webhook")
        )
    return endpoints or 0, audited or 0


@pytest.mark.parametrize(("body", "field"), BAD, ids=[f for _, f in BAD])
async def test_a_bad_endpoint_is_refused_naming_the_field_and_nothing_is_stored(
    client: Client, db: Db, world: World, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/api/v1/webhooks", json=body, headers=world.auth("admin", "a"))
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert error["code"] == "invalid" and field in error["fields"], error
    assert await stored(db) == (0, 0)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_loopback_private_and_link_local_targets_are_refused_by_default(
    aiohttp_client: AiohttpClient, settings: Settings, db: Db, world: World, url: str
) -> None:
    strict = await aiohttp_client(create_app(replace(settings, webhooks=WebhookSettings())))
    answer = await strict.post(
        "/api/v1/webhooks",
        json={**GOOD, "url": url},
        headers={**world.auth("admin", "a"), "Accept-Language": "en"},
    )
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["error"]["fields"] == {"url": PRIVATE_URL}
    assert await stored(db) == (0, 0)


async def test_only_admins_of_the_subtree_manage_its_endpoints(
    client: Client, db: Db, world: World
) -> None:
    for role in ("operator", "reviewer", "venue_staff"):
        answer = await client.post("/api/v1/webhooks", json=GOOD, headers=world.auth(role, "a"))
        assert answer.status == 403
    created = await client.post("/api/v1/webhooks", json=GOOD, headers=world.auth("admin", "a"))
    assert created.status == 201
    body = await created.json()
    secret, ref = body["secret"], body["id"]
    for path in (f"/api/v1/webhooks/{ref}", f"/api/v1/webhooks/{ref}/deliveries"):
        assert (await client.get(path, headers=world.auth("admin", "b"))).status == 404
        assert (await client.get(path, headers=world.auth("admin", "a"))).status == 200
    listed = await client.get("/api/v1/webhooks", headers=world.auth("admin", "b"))
    assert (await listed.json())["webhooks"] == []
    listed = await client.get("/api/v1/webhooks", headers=world.auth("admin", "a"))
    assert [w["id"] for w in (await listed.json())["webhooks"]] == [ref]
    assert secret not in await listed.text()
    deleted = await client.delete(f"/api/v1/webhooks/{ref}", headers=world.auth("admin", "a"))
    assert deleted.status == 200
    async with read_session(db) as session:
        trail = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.before, AuditEntry.after)
                .where(AuditEntry.object_type == "webhook")
                .order_by(AuditEntry.id)
            )
        ).all()
        left = await session.scalar(select(func.count()).select_from(WebhookEndpoint))
    assert [row.action for row in trail] == ["webhook.create", "webhook.delete"]
    assert all(secret not in str(row) and secret[6:20] not in str(row) for row in trail)
    assert left == 0
