"""The operator console: the live venue wall of a session, and the broadcast controls."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.labels import ICE_PATH_LABELS
from server.domain.vocabulary import BROADCASTABLE_STATES, VENUE_READERS, WRITERS
from server.domain.wall_tiles import CONDITION_BADGES, CONDITION_LABELS
from server.errors import Forbidden, Invalid
from server.keys import DB_KEY, PRINCIPAL_KEY, RELAY_KEY, SETTINGS_KEY
from server.live.notify import session_channel
from server.live.sockets import serve_channel
from server.pages.render import render
from server.rtc.turn import ice_servers_for
from server.services import session_views, sessions
from server.services.clock import utcnow
from server.services.wall import arrange, readiness, venue_wall


def _ice_servers(request: web.Request) -> list[dict[str, object]]:
    """The STUN/TURN servers as RTCPeerConnection takes them (none by default): our coturn with
    credentials minted for this user (good for HETANG_TURN_TTL_S), then the static ones."""
    settings = request.app[SETTINGS_KEY]
    name = f"user.{request[PRINCIPAL_KEY].username}"
    return list(ice_servers_for(settings.ice, settings.turn, name, utcnow()).servers)


@allow(*VENUE_READERS)
async def get_console(request: web.Request) -> web.Response:
    """GET /sessions/{id}/console"""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        training = await session_views.load_visible(session, principal.scope, public_id)
        view = await session_views.view_of(session, principal.scope, training)
        owner = await sessions.is_owner(session, principal.scope, training)
        _, tiles = await venue_wall(session, principal.scope, public_id, utcnow())
    broadcast = await request.app[RELAY_KEY].status(public_id)
    shown = arrange(tiles, broadcast.on, broadcast.publishing)
    context = {
        "session": view,
        "tiles": shown,
        "readiness": readiness(shown, broadcast.on),
        "broadcast": broadcast,
        "condition_labels": CONDITION_LABELS,
        "condition_badges": CONDITION_BADGES,
        # Only the organizer's operators publish; everyone else watches the wall.
        "can_broadcast": owner and principal.role in WRITERS,
        "broadcastable": BROADCASTABLE_STATES,
        "ice_servers": _ice_servers(request),
        "time_zone": request.app[SETTINGS_KEY].tz.key,
        "ice_path_labels": ICE_PATH_LABELS,
    }
    return render(request, "console.html", context)


@allow(*VENUE_READERS)
async def get_live(request: web.Request) -> web.WebSocketResponse:
    """GET /sessions/{id}/live (WebSocket): "wall_changed" whenever the wall should be re-read."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Forbidden("The request came from another site (CSRF check failed).")
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        await session_views.load_visible(session, principal.scope, public_id)
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise Invalid("This address is a WebSocket: connect with Upgrade: websocket.")
    return await serve_channel(request, session_channel(public_id))
