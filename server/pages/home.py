"""The start page: who is signed in, their scope, and what lies inside it."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.vocabulary import ROLES
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.render import render
from server.services import members, organizations, venues
from server.services.agenda import agenda_for
from server.services.clock import utcnow


@allow(*ROLES)
async def get_home(request: web.Request) -> web.Response:
    """GET /"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        counts = {
            "organizations": await organizations.count_orgs(session, principal.scope),
            "members": await members.count_members(session, principal.scope),
            "venues": await venues.count_venues(session, principal.scope),
        }
        agenda = await agenda_for(session, principal, utcnow())
    return render(request, "home.html", {"counts": counts, "agenda": agenda})
