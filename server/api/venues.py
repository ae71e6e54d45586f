"""JSON handlers for venues: create (token shown once), rotate the token, list."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.venues import is_online, parse_venue
from server.domain.vocabulary import VENUE_READERS
from server.http.body import checked, iso, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services import venues
from server.services.clock import utcnow
from server.services.venues import VenueView


def venue_json(view: VenueView) -> dict[str, Any]:
    """A venue in the API's words (never its token)."""
    return {
        "code": view.code,
        "name": view.name,
        "org_code": view.org_code,
        "org_name": view.org_name,
        "token_hint": view.token_hint,
        "token_rotated_at": iso(view.token_rotated_at),
        "agent": {
            "online": is_online(view.agent_last_seen_at, utcnow()),
            "last_seen_at": iso(view.agent_last_seen_at),
            "state": view.agent_state,
            "version": view.agent_version,
        },
    }


@allow("admin")
async def create_venue(request: web.Request) -> web.Response:
    """POST /api/v1/venues: the answer carries the token, the only time it is shown."""
    fields = checked(parse_venue(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view, token = await venues.create_venue(session, principal.scope, principal.actor, fields)
    return reply({**venue_json(view), "token": token}, status=201)


@allow("admin")
async def rotate_venue_token(request: web.Request) -> web.Response:
    """POST /api/v1/venues/{code}/token: the old token stops working."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        token = await venues.rotate_token(
            session, principal.scope, principal.actor, request.match_info["code"]
        )
    return reply({"token": token})


@allow(*VENUE_READERS)
async def list_venues(request: web.Request) -> web.Response:
    """GET /api/v1/venues"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await venues.list_venues(session, principal.scope)
    return reply({"venues": [venue_json(view) for view in views]})


@allow(*VENUE_READERS)
async def get_venue(request: web.Request) -> web.Response:
    """GET /api/v1/venues/{code}"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await venues.get_venue(session, principal.scope, request.match_info["code"])
    return reply(venue_json(view))
