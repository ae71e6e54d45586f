"""Sessions as callers see them: which sessions a scope sees (its own, and joint ones with a
venue in it), one or many with their venues and roster sizes, and the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Organization, RosterEntry, SessionVenue, TrainingSession, Venue
from server.domain.sessions import ClassRef
from server.errors import NotFound
from server.services.plan_links import class_refs


@dataclass(frozen=True)
class VenueRole:
    """A venue of a session and its part in it."""

    code: str
    name: str
    role: str


@dataclass(frozen=True)
class SessionView:
    """A session as callers see it."""

    id: str
    title: str
    topic_code: str
    starts_at: datetime
    ends_at: datetime
    credit_hours: Decimal
    state: str
    policy: dict[str, Any]
    org_code: str
    venues: tuple[VenueRole, ...]
    roster_size: int
    plan_class: ClassRef | None = None
    org_name: str = ""  # the organizer's name, as pages show it
    replay_of: str | None = None  # a make-up session (补学): the session whose recording it plays

    @property
    def main_venue(self) -> str:
        """The code of the main venue."""
        return next(venue.code for venue in self.venues if venue.role == "main")


def visible_condition(scope: Scope) -> Any:
    """Sessions owned inside the scope, or with a venue inside it."""
    if scope.path is None:
        return None
    in_scope = select(Organization.id).where(scope.clause(Organization.path))
    with_venue = (
        select(SessionVenue.session_id)
        .join(Venue, SessionVenue.venue_id == Venue.id)
        .where(Venue.org_id.in_(in_scope))
    )
    return or_(TrainingSession.org_id.in_(in_scope), TrainingSession.id.in_(with_venue))


def venues_in(scope: Scope) -> Select[int]:
    """The ids of the venues whose organization lies in the scope."""
    return (
        select(Venue.id)
        .join(Organization, Organization.id == Venue.org_id)
        .where(scope.clause(Organization.path))
    )


async def load_visible(session: AsyncSession, scope: Scope, public_id: str) -> TrainingSession:
    """The session row, if the scope may see it (else 404)."""
    query = select(TrainingSession).where(TrainingSession.public_id == public_id)
    condition = visible_condition(scope)
    if condition is not None:
        query = query.where(condition)
    training = (await session.execute(query)).scalar_one_or_none()
    if training is None:
        raise NotFound("No session with id {id}.", id=public_id)
    return training


async def view_of(session: AsyncSession, scope: Scope, training: TrainingSession) -> SessionView:
    """The session with its venues and roster size."""
    return (await views_of(session, scope, [training]))[0]


async def views_of(
    session: AsyncSession, scope: Scope, trainings: Sequence[TrainingSession]
) -> list[SessionView]:
    """Several sessions with their venues and roster sizes, in three queries in all."""
    ids = [training.id for training in trainings]
    venues: dict[int, list[VenueRole]] = {session_id: [] for session_id in ids}
    for session_id, code, name, role in await session.execute(
        select(SessionVenue.session_id, Venue.code, Venue.name, SessionVenue.role)
        .join(Venue, SessionVenue.venue_id == Venue.id)
        .where(SessionVenue.session_id.in_(ids))
        .order_by(SessionVenue.role.desc(), Venue.code)
    ):
        venues[session_id].append(VenueRole(code, name, role))
    sizes = dict(
        (
            await session.execute(
                select(RosterEntry.session_id, func.count())
                .where(RosterEntry.session_id.in_(ids))
                .group_by(RosterEntry.session_id)
            )
        ).all()
    )
    # A joint session's other subtrees see it, but not the plan class of its organizer.
    refs = await class_refs(session, (training.plan_class_id for training in trainings), scope)
    orgs = {
        org_id: (code, name)
        for org_id, code, name in await session.execute(
            select(Organization.id, Organization.code, Organization.name).where(
                Organization.id.in_({training.org_id for training in trainings})
            )
        )
    }
    originals = {
        found_id: public_id
        for found_id, public_id in await session.execute(
            select(TrainingSession.id, TrainingSession.public_id).where(
                TrainingSession.id.in_(
                    {t.replay_of_id for t in trainings if t.replay_of_id is not None}
                )
            )
        )
    }
    return [
        SessionView(
            training.public_id,
            training.title,
            training.topic_code,
            training.starts_at,
            training.ends_at,
            training.credit_hours,
            training.state,
            dict(training.policy),
            orgs.get(training.org_id, ("", ""))[0],
            tuple(venues[training.id]),
            int(sizes.get(training.id, 0)),
            refs.get(training.plan_class_id) if training.plan_class_id else None,
            orgs.get(training.org_id, ("", ""))[1],
            originals.get(training.replay_of_id) if training.replay_of_id else None,
        )
        for training in trainings
    ]


async def get_session(session: AsyncSession, scope: Scope, public_id: str) -> SessionView:
    """One session the scope may see."""
    return await view_of(session, scope, await load_visible(session, scope, public_id))


async def list_sessions(
    session: AsyncSession, scope: Scope, *, limit: int = 200
) -> list[SessionView]:
    """Sessions the scope may see, latest first."""
    query = select(TrainingSession).order_by(TrainingSession.starts_at.desc()).limit(limit)
    return await select_views(session, scope, query)


async def select_views(
    session: AsyncSession, scope: Scope, query: Select[TrainingSession]
) -> list[SessionView]:
    """The sessions a query selects, of those the scope may see, in its order."""
    condition = visible_condition(scope)
    if condition is not None:
        query = query.where(condition)
    return await views_of(session, scope, (await session.execute(query)).scalars().all())
