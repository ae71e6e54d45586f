"""JSON handlers for a session's recordings, and the recording file itself (HTTP Range, so a
browser's <video> seeks): who may read the session may read its recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.vocabulary import ADMINS, READERS
from server.errors import NotFound
from server.http.body import iso, reply
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import recordings
from server.services.clock import utcnow
from server.services.recordings import RecordingView

WEBM = "video/webm"


def recording_json(request: web.Request, view: RecordingView) -> dict[str, Any]:
    """A recording in the API's words, with the URL that serves its file."""
    url = request.app.router["api_recording_file"].url_for(id=view.session_id, recording=view.id)
    return {
        "id": view.id,
        "started_at": iso(view.started_at),
        "ended_at": iso(view.ended_at) if view.ended_at else None,
        "duration_s": None if view.duration_ms is None else view.duration_ms / 1000,
        "bytes": view.bytes,
        "gaps": [{"start_s": start, "end_s": end} for start, end in view.gaps],
        "problem": view.problem,
        "deleted": view.deleted,
        "url": None if view.deleted else str(url),
    }


@allow(*READERS)
async def list_recordings(request: web.Request) -> web.Response:
    """GET /api/v1/sessions/{id}/recordings: the session's recordings, oldest first."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await recordings.of_session(session, principal.scope, request.match_info["id"])
    return reply({"recordings": [recording_json(request, view) for view in views]})


@allow(*READERS)
async def get_recording_file(request: web.Request) -> web.FileResponse:
    """GET /api/v1/sessions/{id}/recordings/{recording}/file: the WebM, Range requests answered
    206 (aiohttp's FileResponse)."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await recordings.one(
            session, principal.scope, request.match_info["id"], request.match_info["recording"]
        )
    path = recording_file(request, view)
    name = f"{view.session_id}-{view.started_at:%Y%m%d-%H%M}.webm"
    return web.FileResponse(
        path,
        headers={"Content-Type": WEBM, "Content-Disposition": f'inline; filename="{name}"'},
    )


@allow(*ADMINS)
async def delete_recording(request: web.Request) -> web.Response:
    """DELETE /api/v1/sessions/{id}/recordings/{recording}: remove a finished recording's file."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await recordings.mark_deleted(
            session,
            principal.scope,
            principal.actor,
            request.match_info["id"],
            request.match_info["recording"],
            utcnow(),
        )
    recording_file(request, view, must_exist=False).unlink(missing_ok=True)
    return reply({"id": view.id, "deleted": True})


def recording_file(request: web.Request, view: RecordingView, *, must_exist: bool = True) -> Path:
    """The recording's file under the recordings directory (never outside it)."""
    home = request.app[SETTINGS_KEY].recordings_home.resolve()
    path = (home / view.file_name).resolve()
    if path.parent != home or (must_exist and not path.is_file()):
        raise NotFound("The file of recording {id} is no longer on the server.", id=view.id)
    return path
