"""Venue pages: the list with agent status, adding a venue, rotating its token (shown once)."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.venues import parse_venue
from server.domain.vocabulary import VENUE_READERS
from server.errors import ApiError
from server.http.body import checked
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form
from server.pages.render import render
from server.services import organizations, venues
from server.services.venues import VenueView


async def _list_page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    problem: FormProblem | None = None,
    created: tuple[VenueView, str] | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await venues.list_venues(session, principal.scope)
        tree = (
            await organizations.list_tree(session, principal.scope)
            if principal.role == "admin"
            else []
        )
    return render(
        request,
        "venues.html",
        {
            "venues": views,
            "tree": tree,
            "form": form or {},
            "problem": problem,
            "created": created[0] if created else None,
            "new_token": created[1] if created else None,
        },
        status=problem.status if problem else 200,
    )


@allow(*VENUE_READERS)
async def get_venues(request: web.Request) -> web.Response:
    """GET /venues"""
    return await _list_page(request)


@allow("admin")
async def create_venue(request: web.Request) -> web.Response:
    """POST /venues: the answer shows the new token, the only time anybody sees it."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    try:
        fields = checked(parse_venue(form))
        async with write_session(request.app[DB_KEY]) as session:
            created = await venues.create_venue(session, principal.scope, principal.actor, fields)
    except ApiError as error:
        return await _list_page(request, form=form, problem=problem_of(request, "venue", error))
    return await _list_page(request, created=created)


@allow("admin")
async def confirm_token_rotation(request: web.Request) -> web.Response:
    """GET /venues/{code}/token: ask before the old token stops working."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await venues.get_venue(session, principal.scope, request.match_info["code"])
    return render(request, "venue_token.html", {"venue": view, "new_token": None})


@allow("admin")
async def rotate_token(request: web.Request) -> web.Response:
    """POST /venues/{code}/token: a new token, shown once; the old one stops working at once."""
    principal = request[PRINCIPAL_KEY]
    code = request.match_info["code"]
    async with write_session(request.app[DB_KEY]) as session:
        token = await venues.rotate_token(session, principal.scope, principal.actor, code)
        view = await venues.get_venue(session, principal.scope, code)
    return render(request, "venue_token.html", {"venue": view, "new_token": token})
