"""Webhook endpoints of an organization's subtree: register (the secret shown once), change,
rotate the secret (the old one signs beside it for a day), delete, and the delivery log with
replay. Every change is audited; secrets are never logged, audited or shown again."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Organization, WebhookDelivery, WebhookEndpoint
from server.domain.api_tokens import token_id_of
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.webhook_secrets import SecretBox, hint, new_secret
from server.domain.webhooks import (
    PRIVATE_URL,
    ROTATION_OVERLAP,
    EndpointFields,
    is_public_address,
    url_host,
)
from server.errors import Invalid, NotFound
from server.services import audit
from server.services.clock import utcnow
from server.services.organizations import org_named_in

NO_SUCH_ENDPOINT = "No such webhook endpoint."
NO_SUCH_DELIVERY = "No such delivery."
LOG_LENGTH = 200


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as admins see it (never its secret: only the first characters)."""

    id: int
    url: str
    events: tuple[str, ...]
    org_code: str
    org_name: str
    enabled: bool
    secret_hint: str
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


@dataclass(frozen=True)
class DeliveryView:
    """One event for one endpoint and how its delivery went."""

    id: int
    msg_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    payload: str


def _view(endpoint: WebhookEndpoint, org: Organization, now: datetime) -> EndpointView:
    previous = endpoint.previous_until
    return EndpointView(
        endpoint.id,
        endpoint.url,
        tuple(endpoint.events),
        org.code,
        org.name,
        endpoint.enabled,
        endpoint.secret_hint,
        endpoint.created_at,
        endpoint.updated_at,
        previous if endpoint.previous_secret and previous and previous > now else None,
        endpoint.failing_since,
        endpoint.disabled_at,
        endpoint.disabled_reason,
    )


def _audited(view: EndpointView) -> dict[str, Any]:
    return {
        "url": view.url,
        "events": list(view.events),
        "org_code": view.org_code,
        "enabled": view.enabled,
        "secret_hint": view.secret_hint,
    }


async def check_target(url: str, allow_private: bool) -> None:
    """422 on `url` unless its host resolves, and only to public addresses (any address when
    HETANG_WEBHOOK_ALLOW_PRIVATE is on)."""
    host = url_host(url)
    if host is None:
        raise Invalid("The URL must be http:// or https://.", fields={"url": "must be http(s)"})
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Invalid(
            "The URL's host name cannot be resolved.", fields={"url": "cannot be resolved"}
        ) from None
    addresses = {str(info[4][0]) for info in infos}
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise Invalid(
            "The URL points to a loopback, private or link-local address.",
            fields={"url": PRIVATE_URL},
        )


async def _endpoint_in_scope(
    session: AsyncSession, scope: Scope, ref: str
) -> tuple[WebhookEndpoint, Organization]:
    endpoint_id = token_id_of(ref)
    row = None
    if endpoint_id is not None:
        row = (
            await session.execute(
                select(WebhookEndpoint, Organization)
                .join(Organization, Organization.id == WebhookEndpoint.org_id)
                .where(WebhookEndpoint.id == endpoint_id)
            )
        ).first()
    if row is None or not scope.covers(row[1].path):
        raise NotFound(NO_SUCH_ENDPOINT)
    return row[0], row[1]


async def create(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    fields: EndpointFields,
    box: SecretBox,
) -> tuple[EndpointView, str]:
    """Register an endpoint for an organization of the scope (its URL checked beforehand by
    `check_target`, outside the transaction); returns it and its secret, the one time the
    secret is shown."""
    org = await org_named_in(session, scope, fields.org_code)
    secret, now = new_secret(), utcnow()
    endpoint = WebhookEndpoint(
        org_id=org.id,
        url=fields.url,
        events=list(fields.events),
        enabled=fields.enabled,
        secret=box.seal(secret),
        secret_hint=hint(secret),
        created_at=now,
        created_by=actor,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    view = _view(endpoint, org, now)
    await audit.append(
        session,
        [AuditFacts(now, actor, "webhook.create", "webhook", str(view.id), None, _audited(view))],
    )
    return view, secret


async def list_endpoints(session: AsyncSession, scope: Scope) -> list[EndpointView]:
    """The scope's endpoints, oldest first."""
    rows = await session.execute(
        select(WebhookEndpoint, Organization)
        .join(Organization, Organization.id == WebhookEndpoint.org_id)
        .where(scope.clause(Organization.path))
        .order_by(WebhookEndpoint.id)
    )
    now = utcnow()
    return [_view(endpoint, org, now) for endpoint, org in rows]


async def get(session: AsyncSession, scope: Scope, ref: str) -> EndpointView:
    """One endpoint of the scope (404 for any other)."""
    endpoint, org = await _endpoint_in_scope(session, scope, ref)
    return _view(endpoint, org, utcnow())


async def update(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    ref: str,
    fields: EndpointFields,
) -> EndpointView:
    """Replace an endpoint's URL, events, organization and switch; enabling it again starts
    a new run (the deliveries it kept go out)."""
    endpoint, org = await _endpoint_in_scope(session, scope, ref)
    now = utcnow()
    before = _view(endpoint, org, now)
    if fields.org_code != org.code:
        org = await org_named_in(session, scope, fields.org_code)
    endpoint.org_id, endpoint.url, endpoint.events = org.id, fields.url, list(fields.events)
    if fields.enabled and not endpoint.enabled:
        endpoint.failing_since, endpoint.disabled_at, endpoint.disabled_reason = None, None, None
    elif not fields.enabled and endpoint.enabled:
        endpoint.disabled_at, endpoint.disabled_reason = now, "admin"
    endpoint.enabled, endpoint.updated_at = fields.enabled, now
    await session.flush()
    view = _view(endpoint, org, now)
    was, becomes = changed_fields(_audited(before), _audited(view))
    if was or becomes:
        await audit.append(
            session,
            [AuditFacts(now, actor, "webhook.update", "webhook", str(view.id), was, becomes)],
        )
    return view


async def delete(session: AsyncSession, scope: Scope, actor: str, ref: str) -> EndpointView:
    """Remove an endpoint and its delivery log."""
    endpoint, org = await _endpoint_in_scope(session, scope, ref)
    now = utcnow()
    view = _view(endpoint, org, now)
    await session.delete(endpoint)
    await session.flush()
    await audit.append(
        session,
        [AuditFacts(now, actor, "webhook.delete", "webhook", str(view.id), _audited(view), None)],
    )
    return view


async def rotate(
    session: AsyncSession, scope: Scope, actor: str, ref: str, box: SecretBox
) -> tuple[EndpointView, str]:
    """A new secret; the previous one keeps signing beside it for ROTATION_OVERLAP, so a
    receiver can switch without losing a delivery. The new secret is shown this once."""
    endpoint, org = await _endpoint_in_scope(session, scope, ref)
    secret, now = new_secret(), utcnow()
    old_hint = endpoint.secret_hint
    endpoint.previous_secret, endpoint.previous_until = endpoint.secret, now + ROTATION_OVERLAP
    endpoint.secret, endpoint.secret_hint = box.seal(secret), hint(secret)
    endpoint.updated_at = now
    await session.flush()
    view = _view(endpoint, org, now)
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                "webhook.rotate",
                "webhook",
                str(view.id),
                {"secret_hint": old_hint},
                {"secret_hint": view.secret_hint, "previous_until": now.isoformat()},
            )
        ],
    )
    return view, secret


def _delivery(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        row.id,
        row.msg_id,
        row.event_type,
        row.status,
        row.attempts,
        row.created_at,
        row.next_attempt_at if row.status == "pending" else None,
        row.last_attempt_at,
        row.last_status,
        row.last_error,
        row.delivered_at,
        row.payload,
    )


async def deliveries(
    session: AsyncSession, scope: Scope, ref: str
) -> tuple[EndpointView, list[DeliveryView]]:
    """The endpoint and its latest LOG_LENGTH deliveries, newest first."""
    endpoint, org = await _endpoint_in_scope(session, scope, ref)
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(LOG_LENGTH)
    )
    return _view(endpoint, org, utcnow()), [_delivery(row) for row in rows]


async def replay(
    session: AsyncSession, scope: Scope, actor: str, ref: str, delivery_ref: str
) -> DeliveryView:
    """Send a delivery again (same message id, so a receiver can tell it is a repeat)."""
    endpoint, _org = await _endpoint_in_scope(session, scope, ref)
    delivery_id = token_id_of(delivery_ref)
    row = None if delivery_id is None else await session.get(WebhookDelivery, delivery_id)
    if row is None or row.endpoint_id != endpoint.id:
        raise NotFound(NO_SUCH_DELIVERY)
    now = utcnow()
    before = {"status": row.status, "attempts": row.attempts}
    row.status, row.next_attempt_at = "pending", now
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                "webhook.replay",
                "webhook",
                f"{endpoint.id}/{row.msg_id}",
                before,
                {"status": "pending"},
            )
        ],
    )
    return _delivery(row)
