"""The STUN/TURN servers a venue agent should use, with TURN credentials minted for it."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import agent
from server.http.body import iso, reply
from server.keys import AGENT_VENUE_KEY, SETTINGS_KEY
from server.rtc.turn import ice_servers_for
from server.services.clock import utcnow


@agent
async def agent_ice_servers(request: web.Request) -> web.Response:
    """GET /api/v1/agent/ice-servers"""
    settings = request.app[SETTINGS_KEY]
    venue = request[AGENT_VENUE_KEY]
    found = ice_servers_for(settings.ice, settings.turn, f"venue.{venue.code}", utcnow())
    response = reply({"ice_servers": list(found.servers), "expires_at": iso(found.expires_at)})
    response.headers["Cache-Control"] = "no-store"  # credentials: never kept by a cache
    return response
