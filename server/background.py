"""Background work that runs for the life of the app: the session workflow's clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.db.session import read_session, write_session
from server.keys import DB_KEY, SETTINGS_KEY
from server.services import workflow
from server.services.clock import utcnow

log = logging.getLogger(__name__)


async def run_workflow_clock(app: web.Application) -> None:
    """End sessions left live, and finalize ended ones, once their 30 minutes are up."""
    settings = app[SETTINGS_KEY]
    while True:
        try:
            now = utcnow()
            async with read_session(app[DB_KEY]) as session:
                due = await workflow.due_actions(session, now)
            for public_id, action in due:
                async with write_session(app[DB_KEY]) as session:
                    await workflow.run_due(session, public_id, action, settings.tz, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the workflow clock failed; trying again next round")
        await asyncio.sleep(settings.workflow_interval_s)


async def workflow_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the workflow clock with the app; cancel and await it on exit."""
    task = asyncio.create_task(run_workflow_clock(app), name="workflow-clock")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
