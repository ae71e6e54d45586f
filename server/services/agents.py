"""What venue agents tell the server about themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import AgentVenue
from server.db.models import (
    Member,
    RosterEntry,
    SessionVenue,
    StreamSample,
    TrainingSession,
    Venue,
)
from server.domain.agent_payloads import Heartbeat, Hello, SampleBatch
from server.domain.venues import OFFLINE_AFTER
from server.errors import NotFound
from server.services.webhook_outbox import emit_stream_events

SCHEDULE_PAST = timedelta(hours=12)
SCHEDULE_AHEAD = timedelta(days=7)


async def hello(session: AsyncSession, venue: AgentVenue, hello: Hello, now: datetime) -> None:
    """Remember the agent's version and host, and that it was seen now."""
    await session.execute(
        update(Venue)
        .where(Venue.id == venue.venue_id)
        .values(
            agent_version=hello.agent_version,
            agent_hostname=hello.hostname,
            agent_last_seen_at=now,
        )
    )


async def heartbeat(
    session: AsyncSession, venue: AgentVenue, beat: Heartbeat, now: datetime
) -> None:
    """Remember the agent's state; a venue is offline after three missed heartbeats."""
    await session.execute(
        update(Venue)
        .where(Venue.id == venue.venue_id)
        .values(
            agent_state=beat.state,
            agent_session_id=beat.session_public_id,
            agent_queue_depth=beat.queue_depth,
            agent_ice_path=beat.ice_path,
            agent_version=beat.agent_version,
            agent_last_seen_at=now,
        )
    )


@dataclass(frozen=True)
class ScheduledMember:
    """A roster member as the agent recognizes a scan: by member_no or by card_code."""

    member_no: str
    name: str
    card_code: str | None


@dataclass(frozen=True)
class ScheduledSession:
    """A session in a venue's schedule, with the roster the agent needs to recognize scans."""

    public_id: str
    title: str
    topic_code: str
    starts_at: datetime
    ends_at: datetime
    state: str
    role: str
    roster: tuple[ScheduledMember, ...]


async def schedule(
    session: AsyncSession, venue: AgentVenue, now: datetime
) -> list[ScheduledSession]:
    """This venue's sessions from now − 12 h to now + 7 days, each with its whole roster
    (a member may walk into another room of the same joint class)."""
    rows = (
        await session.execute(
            select(TrainingSession, SessionVenue.role)
            .join(SessionVenue, SessionVenue.session_id == TrainingSession.id)
            .where(
                SessionVenue.venue_id == venue.venue_id,
                TrainingSession.ends_at >= now - SCHEDULE_PAST,
                TrainingSession.starts_at <= now + SCHEDULE_AHEAD,
            )
            .order_by(TrainingSession.starts_at, TrainingSession.public_id)
        )
    ).all()
    result = []
    for training, role in rows:
        roster = (
            await session.execute(
                select(Member.member_no, Member.name, Member.card_code)
                .join(RosterEntry, RosterEntry.member_id == Member.id)
                .where(RosterEntry.session_id == training.id)
                .order_by(Member.member_no)
            )
        ).all()
        result.append(
            ScheduledSession(
                training.public_id,
                training.title,
                training.topic_code,
                training.starts_at,
                training.ends_at,
                training.state,
                role,
                tuple(
                    ScheduledMember(member_no, name, card_code)
                    for member_no, name, card_code in roster
                ),
            )
        )
    return result


async def record_samples(
    session: AsyncSession, venue: AgentVenue, batch: SampleBatch, received_at: datetime
) -> int:
    """Store new samples (one per venue, session and second); return how many were new."""
    session_id = (
        await session.execute(
            select(TrainingSession.id)
            .join(SessionVenue, SessionVenue.session_id == TrainingSession.id)
            .where(
                TrainingSession.public_id == batch.session_public_id,
                SessionVenue.venue_id == venue.venue_id,
            )
        )
    ).scalar_one_or_none()
    if session_id is None:
        raise NotFound("No session with id {id} at this venue.", id=batch.session_public_id)
    if not batch.readings:
        return 0
    # Before storing: the stream's changes are judged against the samples stored until now.
    await emit_stream_events(
        session,
        session_id,
        venue.venue_id,
        venue.code,
        [(reading.at_corrected, reading.state) for reading in batch.readings],
    )
    rows = [
        {
            "session_id": session_id,
            "venue_id": venue.venue_id,
            "at": reading.at_corrected,
            "state": reading.state,
            "bitrate_kbps": reading.bitrate_kbps,
            "fps": reading.fps,
            "loss_pct": reading.loss_pct,
            "jitter_ms": reading.jitter_ms,
            "freezes": reading.freezes,
            "frames_decoded": reading.frames_decoded,
            "received_at": received_at,
        }
        for reading in batch.readings
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(StreamSample)
        .on_conflict_do_nothing(index_elements=["session_id", "venue_id", "at"])
        .returning(StreamSample.id)
    )
    result = await session.execute(statement, rows)
    return len(result.scalars().all())


async def live_counts(session: AsyncSession, now: datetime) -> tuple[int, dict[str, int]]:
    """Venues online now, and sessions by state (for the metrics)."""
    online = await session.scalar(
        select(func.count())
        .select_from(Venue)
        .where(Venue.agent_last_seen_at >= now - OFFLINE_AFTER)
    )
    states = dict(
        (
            await session.execute(
                select(TrainingSession.state, func.count()).group_by(TrainingSession.state)
            )
        ).all()
    )
    return int(online or 0), {str(state): int(count) for state, count in states.items()}
