"""The recordings page of a session: play each recording in the browser (the file is served with
HTTP Range, so it seeks), download it, and see its length, size and the gaps where the main
venue's picture was away."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.vocabulary import READERS
from server.http.i18n import translate_for
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.render import render
from server.pages.stream_timeline import BAR_WIDTH, SpanBox, bar_units, duration_text
from server.services import recordings, session_views
from server.services.recordings import RecordingView

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Space:
    """What every recording takes, what the disk has left, and how long recordings are kept."""

    used_gb: str
    free_gb: str | None
    keep_days: int
    recording: bool


def free_gb(home: Path) -> str | None:
    """Free space on the disk of the recordings directory (or of the nearest folder above it)."""
    for folder in (home, *home.parents):
        if folder.exists():
            return f"{shutil.disk_usage(folder).free / GB:.1f}"
    return None


@dataclass(frozen=True)
class RecordingRow:
    """A recording as the page shows it."""

    view: RecordingView
    url: str | None
    length: str | None
    size_mb: str | None
    gaps: tuple[SpanBox, ...]  # each a time with no picture (state down)


def recording_row(
    request: web.Request, view: RecordingView, gettext: Callable[[str], str]
) -> RecordingRow:
    """A stored recording with its file's URL, its length and size in words, and its gaps."""
    url = None
    if not view.deleted:
        url = str(
            request.app.router["api_recording_file"].url_for(id=view.session_id, recording=view.id)
        )
    total = (view.duration_ms or 0) / 1000
    gaps = tuple(
        SpanBox(
            "down",
            bar_units(BAR_WIDTH * start / total) if total else "0",
            bar_units(BAR_WIDTH * (end - start) / total) if total else "0",
            view.started_at + timedelta(seconds=start),
            view.started_at + timedelta(seconds=end),
            duration_text(round(end - start), gettext),
        )
        for start, end in view.gaps
    )
    return RecordingRow(
        view,
        url,
        None if view.duration_ms is None else duration_text(round(total), gettext),
        None if view.bytes is None else f"{view.bytes / MB:.1f}",
        gaps,
    )


@allow(*READERS)
async def get_recordings(request: web.Request) -> web.Response:
    """GET /sessions/{id}/recordings"""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        view = await session_views.get_session(session, principal.scope, public_id)
        found = await recordings.of_session(session, principal.scope, public_id)
        used = await recordings.space_used(session)
    settings = request.app[SETTINGS_KEY]
    gettext = translate_for(request)
    return render(
        request,
        "recordings.html",
        {
            "session": view,
            "recordings": [recording_row(request, item, gettext) for item in found],
            "bar_width": BAR_WIDTH,
            "space": Space(
                f"{used / GB:.1f}",
                free_gb(settings.recordings_home),
                settings.recording_retention_days,
                settings.recording,
            ),
        },
    )
