"""Telling live listeners that something changed; failures are logged, never raised: the
database is the source of truth and listeners re-read it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from server.keys import BROKER_KEY
from server.live.broker import venue_channel
from server.services.session_views import SessionView

log = logging.getLogger(__name__)


async def schedule_changed(app: web.Application, view: SessionView) -> None:
    """Every venue of the session should fetch its schedule again."""
    message = {"type": "schedule_changed", "session_id": view.id}
    await tell_venues(app, [venue.code for venue in view.venues], message)


async def tell_venues(app: web.Application, codes: Iterable[str], message: dict[str, Any]) -> None:
    """Send one message to the agents of these venues."""
    broker = app[BROKER_KEY]
    for code in codes:
        try:
            await broker.publish(venue_channel(code), message)
        except Exception:
            log.warning("could not send %s to %s", message.get("type"), code, exc_info=True)


def session_channel(public_id: str) -> str:
    """Where a session's live pages listen."""
    return f"session:{public_id}"


async def wall_changed(app: web.Application, session_ids: set[str]) -> None:
    """The venue walls of these sessions should read their state again."""
    broker = app[BROKER_KEY]
    for public_id in session_ids:
        try:
            await broker.publish(session_channel(public_id), {"type": "wall_changed"})
        except Exception:
            log.warning("could not announce a wall change of %s", public_id, exc_info=True)
