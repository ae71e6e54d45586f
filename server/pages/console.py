"""The operator console: the live venue wall of a session (the broadcast controls come next)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.errors import Forbidden, Invalid
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.live.notify import session_channel
from server.live.sockets import serve_channel
from server.pages.render import render
from server.services import sessions
from server.services.clock import utcnow
from server.services.wall import venue_wall

WATCHERS = ("admin", "operator", "reviewer")


@allow(*WATCHERS)
async def get_console(request: web.Request) -> web.Response:
    """GET /sessions/{id}/console"""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        view = await sessions.get_session(session, principal.scope, public_id)
        _, tiles = await venue_wall(session, principal.scope, public_id, utcnow())
    return render(request, "console.html", {"session": view, "tiles": tiles})


@allow(*WATCHERS)
async def get_live(request: web.Request) -> web.WebSocketResponse:
    """GET /sessions/{id}/live (WebSocket): "wall_changed" whenever the wall should be re-read."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("The request came from another site (CSRF check failed).")
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        await sessions.load_visible(session, principal.scope, public_id)
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise Invalid("This address is a WebSocket: connect with Upgrade: websocket.")
    return await serve_channel(request, session_channel(public_id))
