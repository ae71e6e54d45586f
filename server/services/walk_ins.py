"""Accepting a walk-in from outside a session's organizations (flag `outside_scope`, PROTOCOL.md):
kept and judged at finalization, but credited only once a reviewer whose subtree holds the
member accepts it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import AcceptedWalkIn, Attendance
from server.domain.audit_chain import AuditFacts
from server.errors import Conflict
from server.services import audit, members
from server.services.clock import utcnow
from server.services.finalize import finalize_session
from server.services.session_views import load_visible


async def accept_walk_in(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    session_public_id: str,
    member_no: str,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> None:
    """Credit the member's `outside_scope` walk-in in a finalized session the scope sees: the
    member must lie in the scope (else 404, as anywhere); the acceptance is kept, audited, and
    the session recomputed (its new rows audited as any finalization's)."""
    moment = now or utcnow()
    training = await load_visible(session, scope, session_public_id)
    member_id = await members.visible_member_id(session, scope, member_no)
    if training.state != "finalized":
        raise Conflict(
            "Walk-ins are accepted in a finalized session only (an approved one is reopened first)."
        )
    flags = await session.scalar(
        select(Attendance.flags).where(
            Attendance.session_id == training.id, Attendance.member_id == member_id
        )
    )
    nothing = Conflict(
        "Member {member_no} has no walk-in waiting to be accepted in this session.",
        member_no=member_no,
    )
    if flags is None or "outside_scope" not in flags:
        raise nothing
    session.add(
        AcceptedWalkIn(
            session_id=training.id, member_id=member_id, accepted_by=actor, accepted_at=moment
        )
    )
    try:
        await session.flush()
    except IntegrityError:  # accepted meanwhile by a concurrent request
        raise nothing from None
    target = f"{training.public_id}/{member_no}"
    accepted = {"member_no": member_no, "accepted": True}
    facts = [AuditFacts(moment, actor, "attendance.accept", "attendance", target, None, accepted)]
    await audit.append(session, facts)
    report = await finalize_session(session, training, actor, tz, moment)
    if report.changed:
        training.finalized_at = moment
