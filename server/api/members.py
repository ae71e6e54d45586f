"""JSON handlers for members: create, import, search, look up."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.members import parse_member
from server.domain.vocabulary import READERS
from server.errors import Invalid
from server.http.body import checked, read_json, reply
from server.http.i18n import translate_for
from server.http.queries import page_json, query_page
from server.http.uploads import spooled_body
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services import members, organizations
from server.services.member_import import ImportRejected, import_members_file
from server.services.members import MemberView


def member_json(view: MemberView) -> dict[str, str | None]:
    """A member in the API's words."""
    return {
        "member_no": view.member_no,
        "name": view.name,
        "org_code": view.org_code,
        "org_name": view.org_name,
        "category": view.category,
        "card_code": view.card_code,
    }


@allow("admin")
async def create_member(request: web.Request) -> web.Response:
    """POST /api/v1/members"""
    fields = checked(parse_member(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await members.create_member(session, principal.scope, principal.actor, fields)
    return reply(member_json(view), status=201)


@allow("admin")
async def import_members(request: web.Request) -> web.Response:
    """POST /api/v1/members/import (text/csv, up to 64 MiB, read in chunks): all rows or none."""
    if request.content_type not in ("text/csv", "application/csv"):
        raise Invalid("Send the file as CSV (Content-Type: text/csv).")
    principal = request[PRINCIPAL_KEY]
    try:
        async with (
            spooled_body(request) as file,
            write_session(request.app[DB_KEY]) as session,
        ):
            result = await import_members_file(session, principal.scope, principal.actor, file)
    except ImportRejected as rejected:
        rejected.extra = rejected_rows(request, rejected)
        raise
    return reply(
        {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    )


def rejected_rows(request: web.Request, rejected: ImportRejected) -> dict[str, Any]:
    """The bad lines of a rejected file, each in the caller's language, for the error body."""
    gettext = translate_for(request)
    return {
        "rows": [
            {"line": problem.line, "message": problem.render(gettext)}
            for problem in rejected.problems
        ]
    }


@allow(*READERS)
async def list_members(request: web.Request) -> web.Response:
    """GET /api/v1/members?q=&org=&page=&per_page="""
    principal = request[PRINCIPAL_KEY]
    page, per_page = query_page(request, per_page=50, most=members.MAX_PER_PAGE)
    async with read_session(request.app[DB_KEY]) as session:
        org_code = request.query.get("org")
        org = await organizations.get_org(session, principal.scope, org_code) if org_code else None
        result = await members.search_members(
            session,
            principal.scope,
            query=request.query.get("q", ""),
            org=org,
            page=page,
            per_page=per_page,
        )
    return reply(page_json("members", [member_json(item) for item in result.items], result))


@allow(*READERS)
async def get_member(request: web.Request) -> web.Response:
    """GET /api/v1/members/{member_no}"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await members.get_member(session, principal.scope, request.match_info["member_no"])
    return reply(member_json(view))
