"""A session's roster as a CSV file of any length: PUT /api/v1/sessions/{id}/roster."""

from __future__ import annotations

from aiohttp import web

from server.api.members import rejected_rows
from server.api.sessions import session_json
from server.auth.access import allow
from server.db.session import write_session
from server.domain.vocabulary import WRITERS
from server.errors import Invalid
from server.http.body import reply
from server.http.uploads import spooled_body
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.live.notify import schedule_changed
from server.services import rosters
from server.services.member_import import ImportRejected


@allow(*WRITERS)
async def put_roster(request: web.Request) -> web.Response:
    """PUT /api/v1/sessions/{id}/roster (text/csv, up to 64 MiB, read in chunks): the session's
    roster replaced by the file's lines, all or none."""
    if request.content_type not in ("text/csv", "application/csv"):
        raise Invalid("Send the file as CSV (Content-Type: text/csv).")
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    try:
        async with (
            spooled_body(request) as file,
            write_session(request.app[DB_KEY]) as session,
        ):
            view = await rosters.replace_roster(
                session, principal.scope, principal.actor, public_id, file
            )
    except ImportRejected as rejected:
        rejected.extra = rejected_rows(request, rejected)
        raise
    await schedule_changed(request.app, view)
    return reply(session_json(view))
