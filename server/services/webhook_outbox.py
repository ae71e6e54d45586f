"""The webhook outbox: each event written as delivery rows, one per endpoint that wants it, in
the transaction of the change that caused it (services/webhook_delivery sends them)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from server.db.bulk import bulk_insert
from server.db.models import (
    BroadcastSpan,
    Organization,
    ReportSnapshot,
    StreamSample,
    TrainingSession,
    WebhookDelivery,
    WebhookEndpoint,
)
from server.domain.audit_chain import AuditFacts
from server.domain.webhooks import (
    EVENT_OF_ACTION,
    MSG_PREFIX,
    body,
    covers,
    stream_events,
    wants,
)

# The key of a session factory's `info` holding a callable run after a commit that emitted
# events: the in-process worker's wake-up (it polls as well, for other processes' events).
WAKE_INFO = "hetang_webhook_wake"
_EMITTED_INFO = "hetang_webhook_emitted"


@dataclass(frozen=True)
class _Target:
    id: int
    events: tuple[str, ...]
    org_path: str


@dataclass(frozen=True)
class Subject:
    """What an event is about: the organization it belongs to, its ordering key (a session's
    public id), and its `data`."""

    org_path: str
    order_key: str | None
    data: Mapping[str, Any]


def new_msg_id() -> str:
    """A message id (`webhook-id`): the same for every endpoint that gets the event."""
    return MSG_PREFIX + secrets.token_urlsafe(18)


def wake_on_commit(factory: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> None:
    """Have sessions of this factory call `wake` after committing an emitted event."""
    info = dict(factory.kw.get("info") or {})
    info[WAKE_INFO] = wake
    factory.kw["info"] = info


async def _targets(session: AsyncSession) -> list[_Target]:
    rows = await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events, Organization.path)
        .join(Organization, Organization.id == WebhookEndpoint.org_id)
        .where(WebhookEndpoint.enabled.is_(True))
    )
    return [_Target(id_, tuple(events), path) for id_, events, path in rows]


async def emit(
    session: AsyncSession,
    event_type: str,
    subject: Subject,
    at: datetime,
    targets: Sequence[_Target] | None = None,
) -> int:
    """Write one outbox row per enabled endpoint that subscribed to the event and whose
    subtree holds its organization, in the caller's transaction; returns how many."""
    if targets is None:
        targets = await _targets(session)
    chosen = [
        t for t in targets if wants(t.events, event_type) and covers(t.org_path, subject.org_path)
    ]
    if not chosen:
        return 0
    msg_id = new_msg_id()
    payload = json.dumps(
        body(event_type, at, subject.data), ensure_ascii=False, separators=(",", ":")
    )
    rows = [
        {
            "endpoint_id": target.id,
            "msg_id": msg_id,
            "event_type": event_type,
            "payload": payload,
            "order_key": subject.order_key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        for target in chosen
    ]
    await bulk_insert(session, WebhookDelivery, rows)
    _wake_after_commit(session)
    return len(rows)


async def emit_audited(session: AsyncSession, entries: Sequence[AuditFacts]) -> None:
    """The events of audited changes (EVENT_OF_ACTION): called by audit.append, so every change
    that is audited and has an event emits it in the same transaction."""
    wanted = [(EVENT_OF_ACTION[f.action], f) for f in entries if f.action in EVENT_OF_ACTION]
    if not wanted:
        return
    targets = await _targets(session)
    if not targets:
        return
    for event_type, facts in wanted:
        subject = await _subject(session, event_type, facts)
        if subject is not None:
            await emit(session, event_type, subject, facts.at, targets)


async def _subject(session: AsyncSession, event_type: str, facts: AuditFacts) -> Subject | None:
    kind = event_type.split(".", 1)[0]
    if kind in ("session", "broadcast"):
        changed = sorted(facts.after) if event_type == "session.changed" and facts.after else None
        extra = {} if changed is None else {"changed": changed}
        return await session_subject(session, facts.object_id, **extra)
    if kind == "plan":
        org_code, _, year = facts.object_id.rpartition("/")
        path = await session.scalar(select(Organization.path).where(Organization.code == org_code))
        if path is None:
            return None
        data: dict[str, Any] = {"org_code": org_code, "year": int(year)}
        after = facts.after if isinstance(facts.after, dict) else {}
        data["state"] = after.get("state")
        if after.get("comment"):
            data["comment"] = after["comment"]
        return Subject(path, facts.object_id, data)
    row = (
        await session.execute(
            select(ReportSnapshot, Organization.code, Organization.path)
            .join(Organization, Organization.id == ReportSnapshot.org_id)
            .where(ReportSnapshot.id == int(facts.object_id))
        )
    ).first()
    if row is None:
        return None
    report, code, path = row
    data = {"org_code": code, "month": report.month, "version": report.version}
    return Subject(path, None, {**data, "report_id": report.id})


async def session_subject(session: AsyncSession, public_id: str, **extra: Any) -> Subject | None:
    """A session's event subject: its public id as `data.session_id`, title, state, window,
    organizer, and what else the event says (`extra`: a change's fields, a venue's code)."""
    row = (
        await session.execute(
            select(TrainingSession, Organization.code, Organization.path)
            .join(Organization, Organization.id == TrainingSession.org_id)
            .where(TrainingSession.public_id == public_id)
        )
    ).first()
    if row is None:
        return None
    training, code, path = row
    data: dict[str, Any] = {
        "session_id": public_id,
        "title": training.title,
        "state": training.state,
        "starts_at": _iso(training.starts_at),
        "ends_at": _iso(training.ends_at),
        "org_code": code,
        **extra,
    }
    return Subject(path, public_id, data)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _wake_after_commit(session: AsyncSession) -> None:
    sync = session.sync_session
    sync.info[_EMITTED_INFO] = True
    if not event.contains(sync, "after_commit", _woken):
        event.listen(sync, "after_commit", _woken)


def _woken(session: Session) -> None:
    if session.info.pop(_EMITTED_INFO, False):
        wake = session.info.get(WAKE_INFO)
        if callable(wake):
            wake()


async def emit_stream_events(
    session: AsyncSession,
    training_id: int,
    venue_id: int,
    venue_code: str,
    readings: Sequence[tuple[datetime, str]],
) -> int:
    """`venue.down` / `venue.recovered` for new samples of a live session taken while its
    broadcast was on air (a stream is down before 开始直播 and after 结束直播 by plan). Called
    before the samples are stored; returns how many events were written."""
    if not readings:
        return 0
    targets = await _targets(session)
    if not targets:  # the usual case: one query on the samples' hot path, no more
        return 0
    live = await session.scalar(
        select(TrainingSession.public_id).where(
            TrainingSession.id == training_id, TrainingSession.state == "live"
        )
    )
    if live is None:
        return 0
    stored = set(
        await session.scalars(
            select(StreamSample.at).where(
                StreamSample.session_id == training_id,
                StreamSample.venue_id == venue_id,
                StreamSample.at.in_([at for at, _ in readings]),
            )
        )
    )
    readings = [r for r in readings if r[0] not in stored]  # a batch sent again says nothing new
    if not readings:
        return 0
    first = min(at for at, _ in readings)
    before = await session.execute(
        select(StreamSample.at, StreamSample.state)
        .where(
            StreamSample.session_id == training_id,
            StreamSample.venue_id == venue_id,
            StreamSample.at < first,
        )
        .order_by(StreamSample.at.desc())
        .limit(1)
    )
    spans = await session.execute(
        select(BroadcastSpan.started_at, BroadcastSpan.ended_at).where(
            BroadcastSpan.session_id == training_id
        )
    )
    on_air = list(spans)

    def aired(at: datetime) -> bool:
        return any(start <= at and (end is None or at <= end) for start, end in on_air)

    last = before.first()
    # Off the air a stream is down by plan: only a state seen on air is one to change from.
    previous = last.state if last is not None and aired(last.at) else None
    written = 0
    for at, event_type in stream_events(previous, [r for r in readings if aired(r[0])]):
        subject = await session_subject(session, live, venue_code=venue_code, at=_iso(at))
        if subject is not None:
            written += await emit(session, event_type, subject, at, targets)
    return written
