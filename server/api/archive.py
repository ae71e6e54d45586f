"""JSON handlers for the training archive: a member's registration form (培训登记表) and the
committee cabinet (一党委一专柜)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.domain.archive import ArchiveLine
from server.domain.members import hours_number as hours
from server.domain.vocabulary import READERS
from server.http.body import iso, query_year, reply
from server.http.reads import read_cabinet, read_registration_form
from server.services.archive import Cabinet, RegistrationForm


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


@allow(*READERS)
async def get_member_archive(request: web.Request) -> web.Response:
    """GET /api/v1/members/{member_no}/archive?year=YYYY: the registration form's content."""
    return reply(form_json(await read_registration_form(request, query_year(request))))


@allow(*READERS)
async def get_cabinet(request: web.Request) -> web.Response:
    """GET /api/v1/organizations/{code}/cabinet?year=YYYY"""
    return reply(cabinet_json(await read_cabinet(request)))
