"""What the delivery worker reads and writes: the deliveries due now (leased, in order per
session), each attempt's outcome (delivered, again later, given up), an endpoint's run of
failures, and disabling one that failed for too long (audited: the admins' notice)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.db.models import WebhookDelivery, WebhookEndpoint
from server.domain.audit_chain import AuditFacts
from server.domain.webhooks import WebhookSettings, outcome, should_disable
from server.services import audit

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:webhooks"
CANDIDATES = 500  # due rows looked at per round


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now, with what signs it (sealed secrets: current, previous)."""

    id: int
    endpoint_id: int
    url: str
    msg_id: str
    payload: str
    attempts: int
    secrets: tuple[str, ...]


async def anything_due(session: AsyncSession, now: datetime) -> bool:
    """Whether any delivery of an enabled endpoint is due now (a read: an idle server takes
    no write lock to find out there is nothing to send)."""
    found = await session.scalar(
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .limit(1)
    )
    return found is not None


async def claim_due(
    session: AsyncSession,
    now: datetime,
    free: Callable[[int], int],
    lease_s: float,
    per_endpoint: int,
    busy: Collection[int] = (),
) -> list[Due]:
    """The deliveries due now, oldest first, at most `free(endpoint)` per endpoint (none of the
    `busy` ones), each the first undecided one of its order key at its endpoint; leased for
    `lease_s` (a worker that dies mid-send leaves them due again afterwards: at least once).
    Each endpoint's own oldest are the candidates, so no endpoint's backlog crowds out
    another's."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.order_key == WebhookDelivery.order_key,
        earlier.status == "pending",
        earlier.id < WebhookDelivery.id,
    )
    rank = (
        func.row_number()
        .over(partition_by=WebhookDelivery.endpoint_id, order_by=WebhookDelivery.id)
        .label("rank")
    )
    ranked = (
        select(WebhookDelivery.id, WebhookDelivery.endpoint_id, rank)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
            WebhookDelivery.endpoint_id.not_in(list(busy)),
            ~blocked,
        )
        .subquery()
    )
    candidates = await session.execute(
        select(ranked.c.id, ranked.c.endpoint_id)
        .where(ranked.c.rank <= per_endpoint)
        .order_by(ranked.c.id)
        .limit(CANDIDATES)
    )
    taken: dict[int, int] = {}
    picked: list[int] = []
    for delivery_id, endpoint_id in candidates:
        if taken.get(endpoint_id, 0) < free(endpoint_id):
            taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
            picked.append(delivery_id)
    if not picked:
        return []
    leased = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id.in_(picked),
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + timedelta(seconds=lease_s))
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    mine = list(leased.scalars())
    if not mine:
        return []
    rows = await session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookEndpoint.url,
            WebhookDelivery.msg_id,
            WebhookDelivery.payload,
            WebhookDelivery.attempts,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_until,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(mine))
        .order_by(WebhookDelivery.id)
    )
    due = []
    for id_, endpoint_id, url, msg_id, payload, attempts, secret, previous, until in rows:
        signing = (secret,) if not previous or until is None or until <= now else (secret, previous)
        due.append(Due(id_, endpoint_id, url, msg_id, payload, attempts, signing))
    return due


@dataclass(frozen=True)
class Attempt:
    """One try at delivering: the answer's status (None: no answer) or what went wrong."""

    delivery_id: int
    endpoint_id: int
    at: datetime
    status: int | None
    error: str | None = None
    retry_after_s: float | None = None
    jitter: float = 1.0


async def record(
    session: AsyncSession, attempts: Sequence[Attempt], policy: WebhookSettings
) -> list[int]:
    """Store each attempt's outcome and the endpoints' runs of failures; disable, with an
    audit entry, every endpoint failing for `policy.disable_after_s`. Returns those ids."""
    if not attempts:
        return []
    ids = [a.delivery_id for a in attempts]
    rows = await session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    by_id = {row.id: row for row in rows}
    failing: dict[int, datetime] = {}
    healthy: set[int] = set()
    for attempt in attempts:
        row = by_id.get(attempt.delivery_id)
        if row is None:  # its endpoint was deleted meanwhile
            continue
        row.attempts += 1
        judged = outcome(
            attempt.status, row.attempts, attempt.retry_after_s, policy.retry_base_s, attempt.jitter
        )
        row.status = judged.state
        row.last_attempt_at, row.last_status = attempt.at, attempt.status
        row.last_error = (attempt.error or "")[:300] or None
        if judged.state == "delivered":
            row.delivered_at = attempt.at
            healthy.add(attempt.endpoint_id)
            failing.pop(attempt.endpoint_id, None)
        else:
            row.next_attempt_at = attempt.at + timedelta(seconds=judged.wait_s)
            failing.setdefault(attempt.endpoint_id, attempt.at)
            healthy.discard(attempt.endpoint_id)
    if healthy:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(healthy))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
    for endpoint_id, since in failing.items():
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=since)
            .execution_options(synchronize_session=False)
        )
    now = max(a.at for a in attempts)
    return await _disable_failing(session, list(failing), now, policy.disable_after_s)


async def _disable_failing(
    session: AsyncSession, endpoint_ids: list[int], now: datetime, limit_s: float
) -> list[int]:
    if not endpoint_ids:
        return []
    endpoints = await session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id.in_(endpoint_ids), WebhookEndpoint.enabled.is_(True)
        )
    )
    disabled = [e for e in endpoints if should_disable(e.failing_since, now, limit_s)]
    facts = []
    for endpoint in disabled:
        endpoint.enabled, endpoint.disabled_at = False, now
        endpoint.disabled_reason, endpoint.updated_at = "failing", now
        since = endpoint.failing_since.isoformat() if endpoint.failing_since else None
        log.warning("webhook endpoint %d disabled: failing since %s", endpoint.id, since)
        facts.append(
            AuditFacts(
                now,
                SYSTEM_ACTOR,
                "webhook.disable",
                "webhook",
                str(endpoint.id),
                {"enabled": True},
                {"enabled": False, "reason": "failing", "failing_since": since},
                f"every delivery failed for {limit_s:g} s",
            )
        )
    await audit.append(session, facts)
    return [e.id for e in disabled]
