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
from server.domain.venues import OFFLINE_AFTER
from server.errors import NotFound

SCHEDULE_PAST = timedelta(hours=12)
SCHEDULE_AHEAD = timedelta(days=7)


async def hello(
    session: AsyncSession, venue: AgentVenue, *, agent_version: str, hostname: str, now: datetime
) -> None:
    """Remember the agent's version and host, and that it was seen now."""
    await session.execute(
        update(Venue)
        .where(Venue.id == venue.venue_id)
        .values(agent_version=agent_version, agent_hostname=hostname, agent_last_seen_at=now)
    )


@dataclass(frozen=True)
class Heartbeat:
    """What an agent reports every heartbeat_s."""

    state: str
    session_id: str | None
    queue_depth: int
    agent_version: str


async def heartbeat(
    session: AsyncSession, venue: AgentVenue, beat: Heartbeat, now: datetime
) -> None:
    """Remember the agent's state; a venue is offline after three missed heartbeats."""
    await session.execute(
        update(Venue)
        .where(Venue.id == venue.venue_id)
        .values(
            agent_state=beat.state,
            agent_session_id=beat.session_id,
            agent_queue_depth=beat.queue_depth,
            agent_version=beat.agent_version,
            agent_last_seen_at=now,
        )
    )


@dataclass(frozen=True)
class ScheduledSession:
    """A session in a venue's schedule, with the roster the agent needs to recognize scans."""

    id: str
    title: str
    topic_code: str
    starts_at: datetime
    ends_at: datetime
    state: str
    role: str
    roster: list[tuple[str, str, str | None]]  # member_no, name, card_code


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
                [(number, name, card) for number, name, card in roster],
            )
        )
    return result


@dataclass(frozen=True)
class StreamReading:
    """One stream-health sample as the agent measured it."""

    at: datetime
    state: str
    bitrate_kbps: float | None
    fps: float | None
    loss_pct: float | None
    jitter_ms: float | None
    freezes: int | None
    frames_decoded: int | None


async def record_samples(
    session: AsyncSession,
    venue: AgentVenue,
    public_id: str,
    readings: list[StreamReading],
    received_at: datetime,
) -> int:
    """Store new samples (one per venue, session and second); return how many were new."""
    training = (
        await session.execute(
            select(TrainingSession.id)
            .join(SessionVenue, SessionVenue.session_id == TrainingSession.id)
            .where(TrainingSession.public_id == public_id, SessionVenue.venue_id == venue.venue_id)
        )
    ).scalar_one_or_none()
    if training is None:
        raise NotFound("No session with id {id} at this venue.", id=public_id)
    if not readings:
        return 0
    rows = [
        {
            "session_id": training,
            "venue_id": venue.venue_id,
            "at": reading.at,
            "state": reading.state,
            "bitrate_kbps": reading.bitrate_kbps,
            "fps": reading.fps,
            "loss_pct": reading.loss_pct,
            "jitter_ms": reading.jitter_ms,
            "freezes": reading.freezes,
            "frames_decoded": reading.frames_decoded,
            "received_at": received_at,
        }
        for reading in readings
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
