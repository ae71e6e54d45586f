"""JSON handlers for webhook endpoints (admins, their subtree): register (the secret shown
once), read, change, delete, rotate the secret, and the delivery log."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.webhook_secrets import SecretBox
from server.domain.webhooks import EndpointFields, parse_endpoint
from server.http.body import checked, iso, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import webhooks
from server.services.webhooks import DeliveryView, EndpointView


def endpoint_json(view: EndpointView) -> dict[str, Any]:
    """An endpoint in the API's words (never its secret)."""
    return {
        "id": view.id,
        "url": view.url,
        "events": list(view.events),
        "org_code": view.org_code,
        "enabled": view.enabled,
        "secret_hint": view.secret_hint,
        "previous_secret_until": iso(view.previous_secret_until),
        "failing_since": iso(view.failing_since),
        "disabled_at": iso(view.disabled_at),
        "disabled_reason": view.disabled_reason,
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
    }


def delivery_json(view: DeliveryView) -> dict[str, Any]:
    """One delivery of the log."""
    return {
        "id": view.id,
        "msg_id": view.msg_id,
        "type": view.event_type,
        "status": view.status,
        "attempts": view.attempts,
        "created_at": iso(view.created_at),
        "next_attempt_at": iso(view.next_attempt_at),
        "last_attempt_at": iso(view.last_attempt_at),
        "last_status": view.last_status,
        "last_error": view.last_error,
        "delivered_at": iso(view.delivered_at),
    }


def _box(request: web.Request) -> SecretBox:
    return SecretBox(request.app[SETTINGS_KEY].secret_key)


async def _endpoint_fields(request: web.Request) -> EndpointFields:
    """The body's endpoint, its URL resolved (before any transaction: DNS may be slow)."""
    fields = checked(parse_endpoint(await read_json(request)))
    await webhooks.check_target(fields.url, request.app[SETTINGS_KEY].webhooks.allow_private)
    return fields


@allow("admin")
async def create_webhook(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks: 201 with the endpoint and its `secret`, shown only here."""
    fields = await _endpoint_fields(request)
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view, secret = await webhooks.create(
            session, principal.scope, principal.actor, fields, _box(request)
        )
    return reply({**endpoint_json(view), "secret": secret}, status=201)


@allow("admin")
async def list_webhooks(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks: the endpoints of the caller's subtree."""
    async with read_session(request.app[DB_KEY]) as session:
        views = await webhooks.list_endpoints(session, request[PRINCIPAL_KEY].scope)
    return reply({"webhooks": [endpoint_json(view) for view in views]})


@allow("admin")
async def get_webhook(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks/{id}."""
    async with read_session(request.app[DB_KEY]) as session:
        view = await webhooks.get(session, request[PRINCIPAL_KEY].scope, request.match_info["id"])
    return reply(endpoint_json(view))


@allow("admin")
async def update_webhook(request: web.Request) -> web.Response:
    """PUT /api/v1/webhooks/{id}: the whole endpoint as in POST (the secret stays)."""
    fields = await _endpoint_fields(request)
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await webhooks.update(
            session, principal.scope, principal.actor, request.match_info["id"], fields
        )
    return reply(endpoint_json(view))


@allow("admin")
async def delete_webhook(request: web.Request) -> web.Response:
    """DELETE /api/v1/webhooks/{id}: the endpoint and its delivery log."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await webhooks.delete(
            session, principal.scope, principal.actor, request.match_info["id"]
        )
    return reply(endpoint_json(view))


@allow("admin")
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks/{id}/rotate: a new `secret`, shown only here; the old one keeps
    signing beside it for 24 hours."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view, secret = await webhooks.rotate(
            session, principal.scope, principal.actor, request.match_info["id"], _box(request)
        )
    return reply({**endpoint_json(view), "secret": secret})


@allow("admin")
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks/{id}/deliveries: the latest deliveries, newest first."""
    async with read_session(request.app[DB_KEY]) as session:
        view, log = await webhooks.deliveries(
            session, request[PRINCIPAL_KEY].scope, request.match_info["id"]
        )
    return reply({"webhook": endpoint_json(view), "deliveries": [delivery_json(d) for d in log]})


@allow("admin")
async def replay_webhook_delivery(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks/{id}/deliveries/{delivery}/replay: send it again, same msg id."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await webhooks.replay(
            session,
            principal.scope,
            principal.actor,
            request.match_info["id"],
            request.match_info["delivery"],
        )
    return reply(delivery_json(view))
