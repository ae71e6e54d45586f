"""What is next for the signed-in user, as their start page lists it: the sessions coming up in
their subtree (a venue's staff: at their venues), and for reviewers the sessions and plans that
wait for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import Principal
from server.db.models import Organization, Plan, SessionVenue, TrainingSession
from server.domain.plans import reviews
from server.domain.vocabulary import REVIEWERS
from server.services.session_views import SessionView, select_views, venues_in

SHOWN = 8  # of each list; the full lists are a click away


@dataclass(frozen=True)
class PlanDue:
    """A filed plan the user's level reviews."""

    org_code: str
    org_name: str
    year: int
    title: str
    filed_at: datetime | None


@dataclass(frozen=True)
class Agenda:
    """The start page's lists, each soonest or oldest first."""

    upcoming: list[SessionView]
    to_finalize: list[SessionView]
    to_approve: list[SessionView]
    plans_to_review: list[PlanDue]


async def _owned(session: AsyncSession, principal: Principal, state: str) -> list[SessionView]:
    """Sessions organized inside the user's subtree in this state, oldest first."""
    query = (
        select(TrainingSession)
        .join(Organization, Organization.id == TrainingSession.org_id)
        .where(TrainingSession.state == state, principal.scope.clause(Organization.path))
        .order_by(TrainingSession.ends_at)
        .limit(SHOWN)
    )
    return await select_views(session, principal.scope, query)


async def _plans_due(session: AsyncSession, principal: Principal) -> list[PlanDue]:
    """Filed plans whose organization's parent is the user's level (any, for the whole tree)."""
    parent = aliased(Organization)
    rows = await session.execute(
        select(
            Organization.code,
            Organization.name,
            Plan.year,
            Plan.title,
            Plan.filed_at,
            parent.path,
        )
        .join(Organization, Organization.id == Plan.org_id)
        .outerjoin(parent, parent.id == Organization.parent_id)
        .where(Plan.state == "filed", principal.scope.clause(Organization.path))
        .order_by(Plan.filed_at, Organization.code)
    )
    due = [
        PlanDue(code, name, year, title, filed_at)
        for code, name, year, title, filed_at, parent_path in rows
        if reviews(principal.scope.path, parent_path)
    ]
    return due[:SHOWN]


async def agenda_for(session: AsyncSession, principal: Principal, now: datetime) -> Agenda:
    """The lists for this user at this moment."""
    upcoming = (
        select(TrainingSession)
        .where(TrainingSession.state.in_(("scheduled", "live")), TrainingSession.ends_at > now)
        .order_by(TrainingSession.starts_at)
        .limit(SHOWN)
    )
    venue_scope = principal.venue_scope
    if venue_scope is not None:
        at_venues = select(SessionVenue.session_id).where(
            SessionVenue.venue_id.in_(venues_in(venue_scope))
        )
        upcoming = upcoming.where(TrainingSession.id.in_(at_venues))
    reviewer = principal.role in REVIEWERS
    return Agenda(
        await select_views(session, principal.scope, upcoming),
        await _owned(session, principal, "ended") if reviewer else [],
        await _owned(session, principal, "finalized") if reviewer else [],
        await _plans_due(session, principal) if reviewer else [],
    )
