"""JSON handlers for the training archive: a member's registration form (培训登记表) and the
committee cabinet (一党委一专柜)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.api.body import iso, query_year, reply
from server.auth.access import allow
from server.db.session import read_session
from server.domain.archive import ArchiveLine
from server.domain.members import hours_number as hours
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import archive
from server.services.archive import Cabinet, RegistrationForm

READERS = ("admin", "operator", "reviewer")


def line_json(line: ArchiveLine) -> dict[str, Any]:
    """A member's hours against the requirement in the API's words."""
    return {
        "member_no": line.member_no,
        "name": line.name,
        "org_code": line.org_code,
        "org_name": line.org_name,
        "category": line.category,
        "required_hours": hours(line.required_hours),
        "earned_hours": hours(line.earned_hours),
        "completeness_pct": float(line.completeness_pct),
        "state": line.state,
    }


def form_json(form: RegistrationForm) -> dict[str, Any]:
    """A registration form in the API's words."""
    return {
        **line_json(form.line),
        "org_path": list(form.org_path),
        "year": form.year,
        "entries": [
            {
                "session_id": entry.session_id,
                "title": entry.title,
                "topic_code": entry.topic_code,
                "starts_at": iso(entry.starts_at),
                "venue": entry.venue,
                "credit_hours": hours(entry.credit_hours),
            }
            for entry in form.entries
        ],
    }


def cabinet_json(found: Cabinet) -> dict[str, Any]:
    """A cabinet in the API's words."""
    summary = found.summary
    return {
        "org": found.org_code,
        "year": found.year,
        "members_total": summary.members_total,
        "complete": summary.complete,
        "incomplete": summary.incomplete,
        "untrained": summary.untrained,
        "members": [line_json(line) for line in found.lines],
    }


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


@allow(*READERS)
async def get_member_archive(request: web.Request) -> web.Response:
    """GET /api/v1/members/{member_no}/archive?year=YYYY: the registration form's content."""
    return reply(form_json(await read_registration_form(request, query_year(request))))


@allow(*READERS)
async def get_cabinet(request: web.Request) -> web.Response:
    """GET /api/v1/organizations/{code}/cabinet?year=YYYY"""
    return reply(cabinet_json(await read_cabinet(request)))
