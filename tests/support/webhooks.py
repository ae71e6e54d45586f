"""Webhook receivers for tests: a real aiohttp server on 127.0.0.1 that verifies every delivery
with the `standardwebhooks` library and answers as scripted; and an endpoint row made directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from standardwebhooks import Webhook

from server.db.models import Organization, WebhookDelivery, WebhookEndpoint
from server.db.session import read_session, write_session
from server.domain.webhook_secrets import SecretBox, hint, new_secret
from server.services.webhook_outbox import new_msg_id
from tests.support.databases import Db


@dataclass
class Received:
    """One delivery as it arrived, its signature checked."""

    msg_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int  # what the receiver answered


@dataclass
class Receiver:
    """Answers each request with the next scripted status (then `then`), verifying every
    signature with each of `secrets` (a delivery must verify with all of them)."""

    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    then: int = 200
    delay_s: float = 0.0
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        for secret in self.secrets:
            try:
                Webhook(secret).verify(raw, headers)
            except Exception as error:  # the test fails on any, whatever its kind
                self.unverified.append(f"{headers.get('webhook-id')}: {error!r}")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.script.pop(0) if self.script else self.then
        self.received.append(Received(headers["webhook-id"], json.loads(raw), headers, status))
        extra = {"Retry-After": self.retry_after} if self.retry_after and status != 200 else {}
        return web.Response(status=status, headers=extra)

    async def start(self, port: int | None = None) -> str:
        """Listen on 127.0.0.1 (on `port` when given); returns the delivery URL."""
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server()
        return str(self.server.make_url("/hook"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def types(self, *, ok_only: bool = False) -> list[str]:
        """The event types received, in order (only those answered 2xx when asked)."""
        return [r.body["type"] for r in self.received if not ok_only or r.status < 300]


async def wait_for(check: Any, what: str, limit_s: float = 20.0) -> Any:
    """Poll an (async or plain) check until truthy; fail naming what never happened."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def make_webhook(
    db: Db,
    secret_key: str,
    org_code: str = "a1",
    url: str = "https://192.0.2.1/hook",
    events: Iterable[str] = ("session.started",),
    *,
    enabled: bool = False,
    with_delivery: bool = False,
) -> str:
    """An endpoint row of the organization (disabled unless asked: it then sends nothing),
    with one delivered delivery whose id is the endpoint's (so one ref names both) when asked;
    returns its id."""
    secret, now = new_secret(), datetime.now(UTC)
    async with write_session(db) as session:
        org_id = await session.scalar(select(Organization.id).where(Organization.code == org_code))
        assert org_id is not None, org_code
        endpoint = WebhookEndpoint(
            org_id=org_id,
            url=url,
            events=list(events),
            enabled=enabled,
            secret=SecretBox(secret_key).seal(secret),
            secret_hint=hint(secret),
            created_at=now,
            created_by="test",
            updated_at=now,
        )
        session.add(endpoint)
        await session.flush()
        if with_delivery:
            session.add(
                WebhookDelivery(
                    id=endpoint.id,
                    endpoint_id=endpoint.id,
                    msg_id=new_msg_id(),
                    event_type="session.started",
                    payload="{}",
                    status="delivered",
                    attempts=1,
                    next_attempt_at=now,
                    created_at=now,
                    delivered_at=now,
                )
            )
        return str(endpoint.id)


async def all_decided(db: Db, endpoint_id: int | str) -> bool:
    """Whether the endpoint has deliveries and none is pending (their outcomes are stored)."""
    async with read_session(db) as session:
        states = list(
            await session.scalars(
                select(WebhookDelivery.status).where(
                    WebhookDelivery.endpoint_id == int(endpoint_id)
                )
            )
        )
    return bool(states) and "pending" not in states
