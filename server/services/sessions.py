"""Training-session use cases: create with venues and roster, edit, change state (how they are
seen: services/session_views.py)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import WHOLE_TREE, Scope
from server.db.bulk import bulk_insert
from server.db.models import (
    Member,
    Organization,
    RosterEntry,
    SessionVenue,
    TrainingSession,
    Venue,
)
from server.domain.attendance import Policy
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.labels import SESSION_ACTION_LABELS, SESSION_STATE_LABELS
from server.domain.sessions import RosterLine, SessionFields, next_state
from server.domain.vocabulary import editable
from server.errors import Conflict, Forbidden, Invalid, Term
from server.services import audit, makeup
from server.services.clock import utcnow
from server.services.plan_links import class_id_for, class_refs
from server.services.session_views import SessionView, load_visible, view_of

PUBLIC_ID_ALPHABET = string.ascii_lowercase + string.digits
LOOKUP_CHUNK = 5000


def new_public_id() -> str:
    """An opaque, unguessable session id."""
    return "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(12))


async def _venues_by_code(
    session: AsyncSession, scope: Scope, codes: tuple[str, ...]
) -> dict[str, tuple[Venue, Organization]]:
    rows = (
        await session.execute(
            select(Venue, Organization)
            .join(Organization, Venue.org_id == Organization.id)
            .where(Venue.code.in_(codes))
        )
    ).all()
    # Any venue of the city may be a branch (joint classes cross subtrees); the main venue must
    # lie in the caller's scope, which is checked by the caller.
    return {venue.code: (venue, org) for venue, org in rows}


async def _member_id_by_no(
    session: AsyncSession, scope: Scope, member_nos: list[str], training: TrainingSession | None
) -> dict[str, int]:
    """The members a roster may name: those of the scope that writes it (the organizer's
    subtree; anyone for the whole tree) and, when a session is edited, those already on its
    roster (placed there by someone entitled to). Anyone else is unknown, whether or not they
    exist elsewhere: a roster neither names nor confirms members of another subtree."""
    allowed = scope.clause(Organization.path)
    if training is not None:
        kept = select(RosterEntry.member_id).where(RosterEntry.session_id == training.id)
        allowed = or_(allowed, Member.id.in_(kept))
    found: dict[str, int] = {}
    for start in range(0, len(member_nos), LOOKUP_CHUNK):
        chunk = member_nos[start : start + LOOKUP_CHUNK]
        rows = await session.execute(
            select(Member.member_no, Member.id)
            .join(Organization, Organization.id == Member.org_id)
            .where(Member.member_no.in_(chunk), allowed)
        )
        found.update({member_no: member_id for member_no, member_id in rows})
    return found


@dataclass(frozen=True)
class _Resolved:
    """A session's venues and roster members, looked up and checked."""

    venues: dict[str, tuple[Venue, Organization]]
    member_id_by_no: dict[str, int]
    plan_class_id: int | None
    replay_of_id: int | None = None

    def main(self, fields: SessionFields) -> Venue:
        """The main venue's row."""
        return self.venues[fields.main_venue][0]


async def _resolve(
    session: AsyncSession,
    scope: Scope,
    fields: SessionFields,
    training: TrainingSession | None = None,
    original: TrainingSession | None = None,  # the lesson a make-up replays, if looked up
) -> _Resolved:
    venues = await _venues_by_code(session, scope, fields.venues)
    missing = [code for code in fields.venues if code not in venues]
    main_known = fields.main_venue in venues and scope.covers(venues[fields.main_venue][1].path)
    if missing or not main_known:
        raise Invalid(
            "Unknown venues: {codes}.",
            codes=", ".join(missing or [fields.main_venue]),
            fields={"main_venue" if not main_known else "branch_venues": "is not a known venue"},
        )
    member_id_by_no = await _member_id_by_no(
        session, scope, [line.member_no for line in fields.roster], training
    )
    unknown = [line.member_no for line in fields.roster if line.member_no not in member_id_by_no]
    if unknown:
        raise Invalid(
            "{count} roster members are unknown: {numbers}.",
            count=len(unknown),
            numbers=", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else ""),
            fields={"roster": "names unknown members"},
        )
    owner_path = venues[fields.main_venue][1].path
    plan_class_id = await class_id_for(session, scope, fields.plan_class, owner_path)
    if fields.replay_of is not None and original is None:
        original = await makeup.original_of(session, scope, fields.replay_of)
    if original is not None:
        makeup.check_topic(original, fields.topic_code)
    replay_of_id = None if original is None else original.id
    return _Resolved(venues, member_id_by_no, plan_class_id, replay_of_id)


async def _write_parts(
    session: AsyncSession, training: TrainingSession, fields: SessionFields, resolved: _Resolved
) -> None:
    """(Re)write the session's venues and roster."""
    await session.execute(delete(RosterEntry).where(RosterEntry.session_id == training.id))
    await session.execute(delete(SessionVenue).where(SessionVenue.session_id == training.id))
    await bulk_insert(
        session,
        SessionVenue,
        [
            {
                "session_id": training.id,
                "venue_id": resolved.venues[code][0].id,
                "role": "main" if code == fields.main_venue else "branch",
            }
            for code in fields.venues
        ],
    )
    await bulk_insert(
        session,
        RosterEntry,
        [
            {
                "session_id": training.id,
                "member_id": resolved.member_id_by_no[line.member_no],
                "venue_id": resolved.venues[line.venue][0].id,
            }
            for line in fields.roster
        ],
    )


def _apply(training: TrainingSession, fields: SessionFields, resolved: _Resolved) -> None:
    main = resolved.main(fields)
    training.plan_class_id = resolved.plan_class_id
    training.replay_of_id = resolved.replay_of_id
    training.title, training.topic_code = fields.title, fields.topic_code
    training.starts_at, training.ends_at = fields.starts_at, fields.ends_at
    training.credit_hours, training.policy = fields.credit_hours, fields.policy.to_json()
    training.org_id, training.main_venue_id = main.org_id, main.id


async def create_session(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    fields: SessionFields,
    creator_id: int | None = None,
) -> SessionView:
    """Schedule a session at a main venue inside the scope, with branches and a roster; a
    make-up session without a roster takes the original's make-up list."""
    original = None
    if fields.replay_of is not None:
        original = await makeup.original_of(session, scope, fields.replay_of)
        if not fields.roster:
            roster = await makeup.makeup_roster(
                session, scope, original, fields.main_venue, fields.branch_venues
            )
            fields = replace(fields, roster=roster)
    resolved = await _resolve(session, scope, fields, original=original)
    now = utcnow()
    training = TrainingSession(
        public_id=new_public_id(),
        state="scheduled",
        created_at=now,
        updated_at=now,
        created_by_id=creator_id,
    )
    _apply(training, fields, resolved)
    session.add(training)
    await session.flush()
    await _write_parts(session, training, fields, resolved)
    view = await view_of(session, scope, training)
    await audit.append(
        session,
        [
            AuditFacts(
                now, actor, "session.create", "session", training.public_id, None, _snapshot(fields)
            )
        ],
    )
    return view


async def update_session(
    session: AsyncSession, scope: Scope, actor: str, session_public_id: str, fields: SessionFields
) -> SessionView:
    """Change a session that has not started: every field, its venues and its roster."""
    training = await load_visible(session, scope, session_public_id)
    await check_owner(session, scope, training)
    if not editable(training.state):
        raise Conflict("Only a session that has not started can be edited.")
    before = await _snapshot_of(session, training)
    resolved = await _resolve(session, scope, fields, training)
    _apply(training, fields, resolved)
    training.updated_at = utcnow()
    await session.flush()
    await _write_parts(session, training, fields, resolved)
    was, becomes = changed_fields(before, _snapshot(fields))
    if was or becomes:
        await audit.append(
            session,
            [
                AuditFacts(
                    training.updated_at,
                    actor,
                    "session.update",
                    "session",
                    session_public_id,
                    was,
                    becomes,
                )
            ],
        )
    return await view_of(session, scope, training)


def _snapshot(fields: SessionFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "topic_code": fields.topic_code,
        "starts_at": fields.starts_at.isoformat(),
        "ends_at": fields.ends_at.isoformat(),
        "credit_hours": f"{fields.credit_hours:.2f}",
        "main_venue": fields.main_venue,
        "branch_venues": sorted(fields.branch_venues),
        "policy": fields.policy.to_json(),
        "roster": sorted([line.member_no, line.venue] for line in fields.roster),
        "plan_class": str(fields.plan_class) if fields.plan_class else None,
        "replay_of": fields.replay_of,
    }


async def _snapshot_of(session: AsyncSession, training: TrainingSession) -> dict[str, Any]:
    """The audited form of a stored session (the same shape as `_snapshot`)."""
    return _snapshot(await fields_of(session, training))


async def fields_of(session: AsyncSession, training: TrainingSession) -> SessionFields:
    """A stored session as the fields that would create it (for edit forms and audits)."""
    venues = (
        await session.execute(
            select(Venue.code, SessionVenue.role)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .where(SessionVenue.session_id == training.id)
            .order_by(Venue.code)
        )
    ).all()
    roster = (
        await session.execute(
            select(Member.member_no, Venue.code)
            .join(RosterEntry, RosterEntry.member_id == Member.id)
            .join(Venue, Venue.id == RosterEntry.venue_id)
            .where(RosterEntry.session_id == training.id)
            .order_by(Member.member_no)
        )
    ).all()
    policy, _ = Policy.from_json(training.policy)
    refs = await class_refs(session, [training.plan_class_id], WHOLE_TREE)
    return SessionFields(
        training.title,
        training.topic_code,
        training.starts_at,
        training.ends_at,
        training.credit_hours,
        next(code for code, role in venues if role == "main"),
        tuple(code for code, role in venues if role == "branch"),
        policy or Policy(),
        tuple(RosterLine(member_no, venue) for member_no, venue in roster),
        refs.get(training.plan_class_id) if training.plan_class_id else None,
        await _public_id(session, training.replay_of_id),
    )


async def _public_id(session: AsyncSession, training_id: int | None) -> str | None:
    if training_id is None:
        return None
    public_id: str | None = await session.scalar(
        select(TrainingSession.public_id).where(TrainingSession.id == training_id)
    )
    return public_id


async def check_owner(session: AsyncSession, scope: Scope, training: TrainingSession) -> None:
    """Only the owner's subtree may change a session; a branch venue's organization sees it."""
    owner_path = await session.scalar(
        select(Organization.path).where(Organization.id == training.org_id)
    )
    if not scope.covers(owner_path or ""):
        raise Forbidden("Only the organizing organization may change this session.")


async def is_owner(session: AsyncSession, scope: Scope, training: TrainingSession) -> bool:
    """Whether the caller's subtree organizes the session (others only see it)."""
    try:
        await check_owner(session, scope, training)
    except Forbidden:
        return False
    return True


async def change_state(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    training: TrainingSession,
    action: str,
    now: datetime | None = None,
) -> None:
    """Move a session the scope sees (`load_visible`) along `scheduled → live → ended →
    finalized → approved` (409 otherwise); only the owner's subtree may (403 for a branch
    venue's organization, which only sees it)."""
    await check_owner(session, scope, training)
    target = next_state(action, training.state)
    if target is None:
        raise Conflict(
            "Cannot {action} a session that is “{state}”.",
            action=Term(SESSION_ACTION_LABELS[action]),
            state=Term(SESSION_STATE_LABELS[training.state]),
        )
    moment = now or utcnow()
    before = training.state
    training.state = target
    training.updated_at = moment
    stamp = {
        "start": "started_at",
        "end": "ended_at",
        "finalize": "finalized_at",
        "approve": "approved_at",
    }.get(action)
    if stamp:
        setattr(training, stamp, moment)
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                moment,
                actor,
                f"session.{action}",
                "session",
                training.public_id,
                {"state": before},
                {"state": target},
            )
        ],
    )
