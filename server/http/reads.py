"""Reads that a JSON handler and a page both answer from the same request: the address's plan
key, a member's registration form, a committee's cabinet."""

from __future__ import annotations

from aiohttp import web

from server.db.session import read_session
from server.domain.times import parse_year
from server.errors import NotFound
from server.http.body import query_year
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import archive
from server.services.archive import Cabinet, RegistrationForm


def plan_key(request: web.Request) -> tuple[str, int]:
    """The organization code and year a plan's address names (404 for a year that cannot be)."""
    org, raw_year = request.match_info["org"], request.match_info["year"]
    year = parse_year(raw_year)
    if year is None:
        raise NotFound("No plan of {org} for {year}.", org=org, year=raw_year)
    return org, year


async def read_registration_form(request: web.Request, year: int) -> RegistrationForm:
    """The form of the request's member for the year, within the caller's scope."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        return await archive.registration_form(
            session,
            principal.scope,
            request.match_info["member_no"],
            year,
            request.app[SETTINGS_KEY].tz,
        )


async def read_cabinet(request: web.Request) -> Cabinet:
    """The cabinet of the request's organization for the query's year, within the scope."""
    year = query_year(request)
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        return await archive.cabinet(session, principal.scope, request.match_info["code"], year)
