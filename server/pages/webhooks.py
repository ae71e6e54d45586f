"""The webhooks page (admins): endpoints of their subtree, registering one (its secret shown
once), switching one on or off, rotating its secret, deleting it; and an endpoint's delivery
log with 重新发送 (replay)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.labels import DELIVERY_STATE_LABELS, EVENT_LABELS
from server.domain.webhook_secrets import SecretBox
from server.domain.webhooks import EVENT_TYPES, EndpointFields, parse_endpoint
from server.errors import ApiError
from server.http.body import checked
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.forms import FormProblem, problem_of
from server.pages.render import render
from server.services import organizations, webhooks
from server.services.webhooks import EndpointView

WEBHOOK_PAGE_MESSAGES = MappingProxyType(
    {
        "deleted": "The endpoint was deleted with its delivery log.",
        "enabled": "The endpoint is enabled; the events it kept are being sent.",
        "disabled": "The endpoint is disabled; it gets no new events.",
        "replayed": "The delivery will be sent again in a moment.",
    }
)


async def _page(
    request: web.Request,
    *,
    form: dict[str, Any] | None = None,
    problem: FormProblem | None = None,
    secret: tuple[EndpointView, str] | None = None,
    message: str | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await webhooks.list_endpoints(session, principal.scope)
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
    return render(
        request,
        "webhooks.html",
        {
            "endpoints": views,
            "failed": [view for view in views if view.disabled_reason == "failing"],
            "tree": tree,
            "event_types": EVENT_TYPES,
            "event_labels": EVENT_LABELS,
            "form": form or {"events": []},
            "problem": problem,
            "shown": secret[0] if secret else None,
            "secret": secret[1] if secret else None,
            "message": WEBHOOK_PAGE_MESSAGES.get(message or ""),
        },
        status=problem.status if problem else 200,
    )


async def _posted(request: web.Request) -> dict[str, Any]:
    data = await request.post()
    return {
        "url": str(data.get("url", "")),
        "org_code": str(data.get("org_code", "")),
        "events": [str(value) for value in data.getall("events", [])],
    }


@allow("admin")
async def get_webhooks(request: web.Request) -> web.Response:
    """GET /webhooks"""
    return await _page(request)


@allow("admin")
async def create_webhook(request: web.Request) -> web.Response:
    """POST /webhooks: the answer shows the new endpoint's secret, the only time it is shown."""
    form = await _posted(request)
    principal = request[PRINCIPAL_KEY]
    try:
        fields = checked(parse_endpoint(form))
        await webhooks.check_target(fields.url, request.app[SETTINGS_KEY].webhooks.allow_private)
        async with write_session(request.app[DB_KEY]) as session:
            created = await webhooks.create(
                session, principal.scope, principal.actor, fields, _box(request)
            )
    except ApiError as error:
        return await _page(request, form=form, problem=problem_of(request, "webhook", error))
    return await _page(request, secret=created)


@allow("admin")
async def switch_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{id}/switch: enable (what it kept goes out) or disable the endpoint."""
    principal = request[PRINCIPAL_KEY]
    enable = (await request.post()).get("enabled") == "1"
    ref = request.match_info["id"]
    async with write_session(request.app[DB_KEY]) as session:
        view = await webhooks.get(session, principal.scope, ref)
        fields = EndpointFields(view.url, view.events, view.org_code, enable)
        await webhooks.update(session, principal.scope, principal.actor, ref, fields)
    return await _page(request, message="enabled" if enable else "disabled")


@allow("admin")
async def rotate_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{id}/rotate: a new secret, shown on the answer only."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        rotated = await webhooks.rotate(
            session, principal.scope, principal.actor, request.match_info["id"], _box(request)
        )
    return await _page(request, secret=rotated)


@allow("admin")
async def delete_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{id}/delete"""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        await webhooks.delete(session, principal.scope, principal.actor, request.match_info["id"])
    return await _page(request, message="deleted")


async def _log_page(request: web.Request, message: str | None = None) -> web.Response:
    async with read_session(request.app[DB_KEY]) as session:
        view, log = await webhooks.deliveries(
            session, request[PRINCIPAL_KEY].scope, request.match_info["id"]
        )
    return render(
        request,
        "webhook_deliveries.html",
        {
            "endpoint": view,
            "deliveries": log,
            "event_labels": EVENT_LABELS,
            "state_labels": DELIVERY_STATE_LABELS,
            "message": WEBHOOK_PAGE_MESSAGES.get(message or ""),
        },
    )


@allow("admin")
async def get_webhook_deliveries(request: web.Request) -> web.Response:
    """GET /webhooks/{id}/deliveries: the delivery log, newest first."""
    return await _log_page(request)


@allow("admin")
async def replay_webhook_delivery(request: web.Request) -> web.Response:
    """POST /webhooks/{id}/deliveries/{delivery}/replay: 重新发送."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        await webhooks.replay(
            session,
            principal.scope,
            principal.actor,
            request.match_info["id"],
            request.match_info["delivery"],
        )
    return await _log_page(request, message="replayed")


def _box(request: web.Request) -> SecretBox:
    return SecretBox(request.app[SETTINGS_KEY].secret_key)
