"""The session workflow: state changes, with finalization computing attendance on the way."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import WHOLE_TREE, Scope
from server.db.models import CheckIn, TrainingSession
from server.services import session_views, sessions
from server.services.clock import utcnow
from server.services.finalize import finalize_session
from server.services.session_views import SessionView

log = logging.getLogger(__name__)
SYSTEM_ACTOR = "system"
AUTO_DELAY = timedelta(minutes=30)


async def act(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    session_public_id: str,
    action: str,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> SessionView:
    """Take a workflow action on a session (409 from a state that does not allow it)."""
    moment = now or utcnow()
    training = await session_views.load_visible(session, scope, session_public_id)
    if action == "finalize" and training.state == "finalized":
        # Re-finalizing recomputes; it is a state change only in name, so nothing is audited
        # unless a result changed.
        await sessions.check_owner(session, scope, training)
        report = await finalize_session(session, training, actor, tz, moment)
        if report.changed:
            training.finalized_at = moment
        return await session_views.view_of(session, scope, training)
    await sessions.change_state(session, scope, actor, training, action, moment)
    if action == "reopen":
        # Check-ins kept while the session was approved now count: recompute with them.
        await session.execute(
            update(CheckIn)
            .where(CheckIn.session_id == training.id, CheckIn.after_approval.is_(True))
            .values(after_approval=False)
        )
    if action in ("finalize", "reopen"):
        await finalize_session(session, training, actor, tz, moment)
    return await session_views.view_of(session, scope, training)


async def due_actions(session: AsyncSession, now: datetime) -> list[tuple[str, str]]:
    """(session id, action) pairs the clock calls for: a session left live is ended 30 min
    after its window; an ended one is finalized 30 min after it ended."""
    live = (
        (
            await session.execute(
                select(TrainingSession.public_id).where(
                    TrainingSession.state == "live", TrainingSession.ends_at <= now - AUTO_DELAY
                )
            )
        )
        .scalars()
        .all()
    )
    ended = (
        (
            await session.execute(
                select(TrainingSession.public_id).where(
                    TrainingSession.state == "ended", TrainingSession.ended_at <= now - AUTO_DELAY
                )
            )
        )
        .scalars()
        .all()
    )
    return [(session_public_id, "end") for session_public_id in live] + [
        (session_public_id, "finalize") for session_public_id in ended
    ]


async def run_due(
    session: AsyncSession, session_public_id: str, action: str, tz: ZoneInfo, now: datetime
) -> None:
    """Take one clock-driven action as the system."""
    await act(session, WHOLE_TREE, SYSTEM_ACTOR, session_public_id, action, tz, now)
    log.info("session %s: %s (automatic)", session_public_id, action)
