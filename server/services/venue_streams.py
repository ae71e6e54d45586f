"""A session venue's stream-health samples: paged for the API, and as each branch venue's
timeline for the review page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.bulk import fetch_tuples
from server.db.epochs import epoch_of
from server.db.models import SessionVenue, StreamSample, TrainingSession, Venue
from server.domain.agent_payloads import SAMPLE_FIGURES
from server.domain.attendance import Policy
from server.domain.paging import Page, offset
from server.domain.stream_timeline import StreamSpan, sample_reach, stream_spans
from server.domain.times import epoch
from server.errors import NotFound
from server.services.broadcasts import on_air_spans
from server.services.session_views import VenueRole, load_visible

MAX_PER_PAGE = 1000


@dataclass(frozen=True)
class SampleView:
    """One stored sample: when, the state, every figure an agent sends (SAMPLE_FIGURES, None
    where it sent none), and when the server received it."""

    at: datetime
    state: str
    figures: Mapping[str, float | int | None]
    received_at: datetime


@dataclass(frozen=True)
class SamplePage:
    """One page of a venue's samples of a session, by time."""

    session_id: str
    venue: VenueRole
    samples: Page[SampleView]


@dataclass(frozen=True)
class StreamTimelines:
    """Each branch venue's spans over the session window, by venue code."""

    verification_required: bool
    by_venue: Mapping[str, tuple[StreamSpan, ...]]


async def _session_venue(
    session: AsyncSession, training: TrainingSession, code: str
) -> tuple[int, VenueRole]:
    """The venue of the session with this code (404 for any other code, known or not)."""
    row = (
        await session.execute(
            select(Venue.id, Venue.name, SessionVenue.role)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .where(SessionVenue.session_id == training.id, Venue.code == code)
        )
    ).first()
    if row is None:
        raise NotFound(
            "Session {id} has no venue with code {code}.", id=training.public_id, code=code
        )
    venue_id, name, role = row
    return venue_id, VenueRole(code, name, role)


async def venue_samples(
    session: AsyncSession,
    scope: Scope,
    public_id: str,
    code: str,
    *,
    since: datetime | None,
    until: datetime | None,
    page: int,
    per_page: int,
) -> SamplePage:
    """The venue's samples of a session the scope sees, at `since` or later and before `until`,
    by time: one page of them, and how many there are in all."""
    training = await load_visible(session, scope, public_id)
    venue_id, venue = await _session_venue(session, training, code)
    condition = (StreamSample.session_id == training.id) & (StreamSample.venue_id == venue_id)
    if since is not None:
        condition &= StreamSample.at >= since
    if until is not None:
        condition &= StreamSample.at < until
    rows = (
        await session.scalars(
            select(StreamSample)
            .where(condition)
            .order_by(StreamSample.at, StreamSample.id)
            .offset(offset(page, per_page))
            .limit(per_page + 1)
        )
    ).all()
    total = await session.scalar(select(func.count()).select_from(StreamSample).where(condition))
    items = [
        SampleView(
            row.at,
            row.state,
            {name: getattr(row, name) for name in SAMPLE_FIGURES},
            row.received_at,
        )
        for row in rows
    ]
    return SamplePage(
        training.public_id, venue, Page.fetched(items, page, per_page, int(total or 0))
    )


async def branch_timelines(session: AsyncSession, scope: Scope, public_id: str) -> StreamTimelines:
    """Every branch venue's stream over the session window [S, E), from the samples stored now
    (those that can reach into the window: from one sample's reach before S)."""
    training = await load_visible(session, scope, public_id)
    policy = Policy.from_json(training.policy)[0] or Policy()
    reach = sample_reach(policy)
    branches = dict(
        (
            await session.execute(
                select(Venue.id, Venue.code)
                .join(SessionVenue, SessionVenue.venue_id == Venue.id)
                .where(SessionVenue.session_id == training.id, SessionVenue.role == "branch")
            )
        ).all()
    )
    points: dict[int, list[tuple[int, str]]] = {venue_id: [] for venue_id in branches}
    # A hundred branches of a three-hour session hold 216 000 samples: read as plain tuples,
    # the database turning times into epoch seconds (as finalizing reads them), not datetimes.
    rows = await fetch_tuples(
        session,
        select(
            StreamSample.venue_id,
            epoch_of(StreamSample.at, session.get_bind().dialect.name),
            StreamSample.state,
        )
        .join(
            SessionVenue,
            (SessionVenue.session_id == StreamSample.session_id)
            & (SessionVenue.venue_id == StreamSample.venue_id),
        )
        .where(
            StreamSample.session_id == training.id,
            SessionVenue.role == "branch",
            StreamSample.at >= training.starts_at - timedelta(seconds=reach),
            StreamSample.at < training.ends_at,
        )
        .order_by(StreamSample.venue_id, StreamSample.at),
    )
    for venue_id, t, state in rows:
        points[venue_id].append((t, state))
    start, end = epoch(training.starts_at), epoch(training.ends_at)
    ended_at = None if training.ended_at is None else epoch(training.ended_at)
    on_air = await on_air_spans(session, training.id)
    return StreamTimelines(
        policy.require_stream_verification,
        {
            branches[venue_id]: stream_spans(found, start, end, reach, ended_at, on_air)
            for venue_id, found in points.items()
        },
    )
