"""Who may broadcast a session and who may receive it; starting and ending are audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import AgentVenue, Scope
from server.db.models import BroadcastSpan, Organization, SessionVenue, TrainingSession, Venue
from server.domain.audit_chain import AuditFacts
from server.domain.labels import SESSION_STATE_LABELS
from server.domain.times import epoch
from server.domain.vocabulary import BROADCASTABLE_STATES
from server.errors import Conflict, NotFound, Term
from server.services import audit
from server.services.recordings import playable
from server.services.session_views import load_visible
from server.services.sessions import check_owner


@dataclass(frozen=True)
class BroadcastTarget:
    """A session that may be broadcast, with the venues that should hear about it."""

    public_id: str
    venue_codes: tuple[str, ...]


async def _venue_codes(session: AsyncSession, training_id: int) -> tuple[str, ...]:
    codes = await session.scalars(
        select(Venue.code)
        .join(SessionVenue, SessionVenue.venue_id == Venue.id)
        .where(SessionVenue.session_id == training_id)
        .order_by(Venue.code)
    )
    return tuple(codes)


async def _broadcastable(session: AsyncSession, scope: Scope, public_id: str) -> TrainingSession:
    training = await load_visible(session, scope, public_id)
    await check_owner(session, scope, training)
    if training.state not in BROADCASTABLE_STATES:
        raise Conflict(
            "Cannot broadcast a session that is “{state}”.",
            state=Term(SESSION_STATE_LABELS[training.state]),
        )
    return training


async def broadcast_target(session: AsyncSession, scope: Scope, public_id: str) -> BroadcastTarget:
    """The session, if the scope organizes it (403 for a branch's organization, 404 unseen) and
    it is scheduled or live (409 otherwise)."""
    training = await _broadcastable(session, scope, public_id)
    return BroadcastTarget(public_id, await _venue_codes(session, training.id))


async def replay_target(
    session: AsyncSession, scope: Scope, public_id: str
) -> tuple[BroadcastTarget, str]:
    """A make-up session that may go on air now, and the file name of the recording it plays:
    as broadcast_target, and 409 for a session that replays nothing or whose recording is gone."""
    training = await _broadcastable(session, scope, public_id)
    if training.replay_of_id is None:
        raise Conflict("Session {id} is a live lesson, not a make-up session.", id=public_id)
    name = await playable(session, training.replay_of_id)
    if name is None:
        raise Conflict("The recording this make-up session plays is no longer on the server.")
    return BroadcastTarget(public_id, await _venue_codes(session, training.id)), name


async def ending_target(session: AsyncSession, scope: Scope, public_id: str) -> BroadcastTarget:
    """The session, if the scope organizes it; ending is allowed in any state."""
    training = await load_visible(session, scope, public_id)
    await check_owner(session, scope, training)
    return BroadcastTarget(public_id, await _venue_codes(session, training.id))


async def check_receiver(session: AsyncSession, venue: AgentVenue, public_id: str) -> None:
    """404 unless the venue takes part in the session."""
    found = await session.scalar(
        select(TrainingSession.id)
        .join(SessionVenue, SessionVenue.session_id == TrainingSession.id)
        .where(TrainingSession.public_id == public_id, SessionVenue.venue_id == venue.venue_id)
    )
    if found is None:
        raise NotFound("No session with id {id} at this venue.", id=public_id)


async def receiver_regions(session: AsyncSession, venue: AgentVenue) -> tuple[str, ...]:
    """The codes of the venue's organization and of every one above it (the regions a media
    edge may be set to serve)."""
    # An organization is above the venue's (or is it) when the venue's path starts with its own.
    venue_org = aliased(Organization)
    rows = await session.scalars(
        select(Organization.code)
        .join(venue_org, venue_org.path.startswith(Organization.path))
        .where(venue_org.id == venue.org_id)
    )
    return tuple(rows)


async def on_air_spans(
    session: AsyncSession, training_id: int
) -> tuple[tuple[int, int | None], ...]:
    """The broadcast's on-air spans of a session, as epoch seconds (end None while on air)."""
    rows = await session.execute(
        select(BroadcastSpan.started_at, BroadcastSpan.ended_at)
        .where(BroadcastSpan.session_id == training_id)
        .order_by(BroadcastSpan.started_at)
    )
    return tuple((epoch(a), None if b is None else epoch(b)) for a, b in rows)


async def record(
    session: AsyncSession, actor: str, public_id: str, action: str, now: datetime
) -> None:
    """Audit `session.broadcast_start` / `session.broadcast_end`, and keep the on-air spans: a
    start opens one unless one is open (a republish), an end closes the open one."""
    training_id = await session.scalar(
        select(TrainingSession.id).where(TrainingSession.public_id == public_id)
    )
    if training_id is not None:
        open_span = (BroadcastSpan.session_id == training_id) & BroadcastSpan.ended_at.is_(None)
        if action == "end":
            await session.execute(update(BroadcastSpan).where(open_span).values(ended_at=now))
        elif await session.scalar(select(BroadcastSpan.id).where(open_span).limit(1)) is None:
            session.add(BroadcastSpan(session_id=training_id, started_at=now))
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                f"session.broadcast_{action}",
                "session",
                public_id,
                {},
                {"broadcast": action},
            )
        ],
    )
