"""Broadcast recordings as stored: one row per recorded broadcast, opened when the broadcast goes
on air and filled in when it ends; both are audited. Who may read them is who may read the
session (services/session_views.load_visible)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Recording, TrainingSession
from server.domain.audit_chain import AuditFacts
from server.domain.recordings import RecordedFacts
from server.errors import Conflict, NotFound
from server.services import audit
from server.services.session_views import load_visible


@dataclass(frozen=True)
class RecordingView:
    """A recording as the API and the pages show it."""

    id: str
    session_id: str
    file_name: str
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    bytes: int | None
    gaps: list[tuple[float, float]]
    problem: str | None
    deleted: bool


def _open(training_id: int) -> ColumnElement[bool]:
    return (
        (Recording.session_id == training_id)
        & Recording.ended_at.is_(None)
        & Recording.deleted_at.is_(None)
    )


async def opened(
    session: AsyncSession, actor: str, public_id: str, file_name: str, now: datetime
) -> None:
    """A broadcast went on air with a recorder: its row, unless one is open (a republish)."""
    training_id = await session.scalar(
        select(TrainingSession.id).where(TrainingSession.public_id == public_id)
    )
    if training_id is None:
        return
    if await session.scalar(select(Recording.id).where(_open(training_id)).limit(1)):
        return
    recording = Recording(
        public_id=str(uuid.uuid4()),
        session_id=training_id,
        file_name=file_name,
        started_at=now,
        gaps=[],
    )
    session.add(recording)
    await _audit(session, now, actor, "recording_start", public_id, {"file": file_name})


async def closed(
    session: AsyncSession, actor: str, public_id: str, facts: RecordedFacts, now: datetime
) -> None:
    """The broadcast ended: its open recording gets its length, size, gaps and problem."""
    recording = await session.scalar(
        select(Recording)
        .join(TrainingSession, TrainingSession.id == Recording.session_id)
        .where(
            TrainingSession.public_id == public_id,
            Recording.ended_at.is_(None),
            Recording.deleted_at.is_(None),
        )
        .order_by(Recording.started_at.desc())
        .limit(1)
    )
    if recording is None:
        return
    recording.ended_at = now
    recording.duration_ms = facts.duration_ms
    recording.bytes = facts.bytes
    recording.gaps = [[start, end] for start, end in facts.gaps]
    recording.problem = facts.problem
    after = {
        "file": recording.file_name,
        "duration_ms": facts.duration_ms,
        "bytes": facts.bytes,
        "gaps": len(facts.gaps),
        "problem": facts.problem,
    }
    await _audit(session, now, actor, "recording_stop", public_id, after)


async def playable(session: AsyncSession, training_id: int) -> str | None:
    """The file name of a session's latest finished recording still on disk (None: none)."""
    name: str | None = await session.scalar(
        select(Recording.file_name)
        .where(
            Recording.session_id == training_id,
            Recording.ended_at.is_not(None),
            Recording.deleted_at.is_(None),
        )
        .order_by(Recording.started_at.desc(), Recording.id.desc())
        .limit(1)
    )
    return name


async def replayable(session: AsyncSession, scope: Scope, public_id: str) -> bool:
    """Whether a make-up session could play this session's recording now."""
    training = await load_visible(session, scope, public_id)
    return await playable(session, training.id) is not None


async def of_session(session: AsyncSession, scope: Scope, public_id: str) -> list[RecordingView]:
    """The session's recordings, oldest first (404 for a session the scope does not see)."""
    training = await load_visible(session, scope, public_id)
    rows = await session.scalars(
        select(Recording)
        .where(Recording.session_id == training.id)
        .order_by(Recording.started_at, Recording.id)
    )
    return [_view(row, public_id) for row in rows]


async def _row(session: AsyncSession, scope: Scope, public_id: str, recording_id: str) -> Recording:
    training = await load_visible(session, scope, public_id)
    row = await session.scalar(
        select(Recording).where(
            Recording.session_id == training.id,
            Recording.public_id == recording_id,
            Recording.deleted_at.is_(None),
        )
    )
    if row is None:
        raise NotFound("No recording {id} of this session.", id=recording_id)
    return row


async def one(
    session: AsyncSession, scope: Scope, public_id: str, recording_id: str
) -> RecordingView:
    """One recording of a session the scope sees; 404 otherwise (or once its file is deleted)."""
    return _view(await _row(session, scope, public_id, recording_id), public_id)


def _deleted(
    row: Recording, public_id: str, actor: str, now: datetime, note: str | None = None
) -> AuditFacts:
    """Mark the recording deleted; what the audit trail says of it."""
    row.deleted_at = now
    before = {"file": row.file_name, "bytes": row.bytes, "duration_ms": row.duration_ms}
    return AuditFacts(
        now, actor, "session.recording_delete", "session", public_id, before, {}, note
    )


async def mark_deleted(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    public_id: str,
    recording_id: str,
    now: datetime,
) -> RecordingView:
    """Mark a finished recording deleted (its file is removed by the caller after the commit);
    409 while the broadcast is still recording into it; audited."""
    row = await _row(session, scope, public_id, recording_id)
    if row.ended_at is None:
        raise Conflict("The broadcast is still being recorded into this file; end it first.")
    view = _view(row, public_id)
    await audit.append(session, [_deleted(row, public_id, actor, now)])
    return view


def _expired(now: datetime, keep_days: int) -> ColumnElement[bool]:
    """Finished recordings, not deleted, that started more than keep_days ago."""
    return and_(
        Recording.deleted_at.is_(None),
        Recording.ended_at.is_not(None),
        Recording.started_at < now - timedelta(days=keep_days),
    )


async def any_expired(session: AsyncSession, now: datetime, keep_days: int) -> bool:
    """Whether expire would delete anything (a read: the clock takes no write lock for
    nothing)."""
    if keep_days <= 0:
        return False
    found = await session.scalar(select(Recording.id).where(_expired(now, keep_days)).limit(1))
    return found is not None


async def expire(session: AsyncSession, actor: str, now: datetime, keep_days: int) -> list[str]:
    """Mark deleted every finished recording that started more than keep_days ago (none when
    keep_days is 0); audited; their file names, for the caller to remove after the commit."""
    if keep_days <= 0:
        return []
    rows = (
        await session.execute(
            select(Recording, TrainingSession.public_id)
            .join(TrainingSession, TrainingSession.id == Recording.session_id)
            .where(_expired(now, keep_days))
        )
    ).all()
    note = f"older than {keep_days} days (HETANG_RECORDING_RETENTION_DAYS)"
    await audit.append(
        session, [_deleted(row, public_id, actor, now, note) for row, public_id in rows]
    )
    return [row.file_name for row, _ in rows]


async def space_used(session: AsyncSession) -> int:
    """Bytes the recordings on disk take (the finished ones' stored sizes)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Recording.bytes), 0)).where(Recording.deleted_at.is_(None))
    )
    return int(total or 0)


def _view(row: Recording, public_id: str) -> RecordingView:
    return RecordingView(
        row.public_id,
        public_id,
        row.file_name,
        row.started_at,
        row.ended_at,
        row.duration_ms,
        row.bytes,
        [(float(start), float(end)) for start, end in row.gaps],
        row.problem,
        row.deleted_at is not None,
    )


async def _audit(
    session: AsyncSession,
    now: datetime,
    actor: str,
    action: str,
    public_id: str,
    after: dict[str, object],
) -> None:
    facts = AuditFacts(now, actor, f"session.{action}", "session", public_id, {}, after)
    await audit.append(session, [facts])
