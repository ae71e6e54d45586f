"""The session workflow's clock, run for the life of the app (contexts.workflow_ctx): it ends
and finalizes sessions on time, keeps each month's report (月报告) of the top-level
organizations once the month is over, deletes recordings past their retention, and puts each
make-up session (补学) on air from its recording when its time comes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.session import read_session, write_session
from server.keys import DB_KEY, METRICS_KEY, SETTINGS_KEY
from server.live.leader import Leadership
from server.replays import play_due_replays
from server.services import recordings, report_snapshots, workflow
from server.services.clock import utcnow

log = logging.getLogger(__name__)


async def run_workflow_clock(
    app: web.Application, stop: asyncio.Event, leadership: Leadership
) -> None:
    """End sessions left live, and finalize ended ones, once their 30 minutes are up; a round
    in progress finishes before the app stops (never cut off in the middle of a transaction).
    Of several processes on one database, only the leader runs the rounds."""
    settings, metrics = app[SETTINGS_KEY], app[METRICS_KEY]
    while not stop.is_set():
        try:
            leads = await leadership.leads()
            metrics.background_leader.set(1 if leads else 0)
            if not leads:
                await _pause(stop, settings.workflow_interval_s)
                continue
            metrics.background_rounds.inc()
            now = utcnow()
            async with read_session(app[DB_KEY]) as session:
                due = await workflow.due_actions(session, now)
            for public_id, action in due:
                async with write_session(app[DB_KEY]) as session:
                    await workflow.run_due(session, public_id, action, settings.tz, now)
            await store_monthly_reports(app, now)
            await expire_recordings(app, now)
            await play_due_replays(app, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the workflow clock failed; trying again next round")
        await _pause(stop, settings.workflow_interval_s)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Until the next round, or until the app stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def expire_recordings(app: web.Application, now: datetime) -> None:
    """Recordings past HETANG_RECORDING_RETENTION_DAYS are marked deleted (audited), then their
    files removed."""
    settings = app[SETTINGS_KEY]
    async with read_session(app[DB_KEY]) as session:
        if not await recordings.any_expired(session, now, settings.recording_retention_days):
            return
    async with write_session(app[DB_KEY]) as session:
        names = await recordings.expire(
            session, workflow.SYSTEM_ACTOR, now, settings.recording_retention_days
        )
    for name in names:
        (settings.recordings_home / name).unlink(missing_ok=True)
    if names:
        log.info("deleted %d recordings past their retention", len(names))


async def store_monthly_reports(app: web.Application, now: datetime) -> None:
    """On the 1st (or the first round after it, should the server have been down), keep the
    previous month's report of every top-level organization that has none yet."""
    stored = await store_due_reports(app[DB_KEY], workflow.SYSTEM_ACTOR, app[SETTINGS_KEY].tz, now)
    if stored:
        log.info("kept the monthly report of %s", ", ".join(stored))


async def store_due_reports(
    db: async_sessionmaker[AsyncSession], actor: str, tz: ZoneInfo, now: datetime
) -> list[str]:
    """Each due report is computed in a read and kept in a short write of its own (a city's
    report takes seconds: no writer waits for it); one already kept meanwhile, by another
    round or process, is not kept again. Returns the codes of the organizations reported."""
    async with read_session(db) as session:
        month, roots = await report_snapshots.due_reports(session, tz, now)
    stored = []
    for root in roots:
        async with read_session(db) as session:
            report = await report_snapshots.generate_for(session, root, month, tz)
        async with write_session(db) as session:
            if await report_snapshots.keep_first(session, actor, report, now):
                stored.append(root.code)
    return stored
