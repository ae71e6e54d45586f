"""Putting a make-up session (补学) on air from its recording: by the operator
(POST /api/v1/sessions/{id}/replay) or by the workflow clock when its start time comes. Either
way the relay plays the file, the on-air span opens (audited as a broadcast start) and the
session's venues are told, as for a live broadcast."""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web

from server.db.session import read_session, write_session
from server.keys import DB_KEY, RELAY_KEY, SETTINGS_KEY
from server.live.notify import tell_venues, wall_changed
from server.rtc.broadcasts import AlreadyOnAir
from server.services import broadcasts, makeup, workflow

log = logging.getLogger(__name__)


class RecordingMissing(Exception):
    """The recording's file is no longer in the recordings directory."""


async def go_on_air(
    app: web.Application,
    actor: str,
    public_id: str,
    venue_codes: tuple[str, ...],
    file_name: str,
    now: datetime,
) -> None:
    """Play the recording to the session's venues (AlreadyOnAir when it is on already,
    RecordingMissing when its file is gone)."""
    path = app[SETTINGS_KEY].recordings_home / file_name
    if not path.is_file():
        raise RecordingMissing(file_name)
    await app[RELAY_KEY].replay(public_id, venue_codes, path, now)
    async with write_session(app[DB_KEY]) as session:
        await broadcasts.record(session, actor, public_id, "start", now)
    await tell_venues(app, venue_codes, {"type": "broadcast_started", "session_id": public_id})
    await wall_changed(app, {public_id})


async def play_due_replays(app: web.Application, now: datetime) -> list[str]:
    """The clock's part: each make-up session whose time has come is started (if scheduled)
    and put on air; the ids of those put on air."""
    async with read_session(app[DB_KEY]) as session:
        due = await makeup.due_replays(session, now)
    played = []
    for replay in due:
        if not (app[SETTINGS_KEY].recordings_home / replay.file_name).is_file():
            log.error("the recording of make-up session %s is missing", replay.public_id)
            continue
        if replay.state == "scheduled":
            async with write_session(app[DB_KEY]) as session:
                await workflow.run_due(
                    session, replay.public_id, "start", app[SETTINGS_KEY].tz, now
                )
        try:
            await go_on_air(
                app,
                workflow.SYSTEM_ACTOR,
                replay.public_id,
                replay.venue_codes,
                replay.file_name,
                now,
            )
        except (AlreadyOnAir, RecordingMissing):
            continue
        played.append(replay.public_id)
    if played:
        log.info("make-up sessions on air from their recordings: %s", ", ".join(played))
    return played
