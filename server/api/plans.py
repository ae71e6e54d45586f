"""JSON handlers for training plans (培训计划备案): create, edit, file, accept or return, read,
list, and the analysis of an organization's year."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain import validation as v
from server.domain.plans import parse_body, parse_comment, parse_plan
from server.domain.vocabulary import READERS, REVIEWERS
from server.errors import Invalid
from server.http.body import checked, iso, query_year, read_json, reply
from server.http.reads import plan_key
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services import plan_analysis, plans
from server.services.plan_analysis import PlanAnalysis
from server.services.plans import PlanView


def plan_json(view: PlanView) -> dict[str, Any]:
    """A plan in the API's words."""
    return {
        "org_code": view.org_code,
        "org_name": view.org_name,
        "year": view.year,
        "title": view.title,
        "state": view.state,
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
        "filed_at": iso(view.filed_at),
        "filed_by": view.filed_by,
        "reviewed_at": iso(view.reviewed_at),
        "reviewed_by": view.reviewed_by,
        "review_comment": view.review_comment,
        "classes": [item.to_json() for item in view.classes],
    }


def analysis_json(result: PlanAnalysis) -> dict[str, Any]:
    """The analysis in the API's words."""
    return {
        "org_code": result.org_code,
        "org_name": result.org_name,
        "year": result.year,
        "state": result.state or "none",
        "members": result.members,
        "children": [
            {
                "org_code": child.code,
                "org_name": child.name,
                "level": child.level,
                "state": child.state or "none",
            }
            for child in result.children
        ],
        "not_filed": result.not_filed,
        "classes": [
            {
                "code": tally.code,
                "title": tally.title,
                "first_lesson": tally.first_lesson,
                "runs_planned": tally.runs_planned,
                "runs_held": tally.runs_held,
                "runs_pct": tally.runs_pct,
                "trainees_planned": tally.trainees_planned,
                "members": tally.members,
                "trainees_reached": tally.trainees_reached,
                "trainees_pct": tally.trainees_pct,
            }
            for tally in result.classes
        ],
        "without_first_lesson": result.without_first_lesson,
        "totals": {
            "runs_planned": result.totals.runs_planned,
            "runs_held": result.totals.runs_held,
            "trainees_planned": result.totals.trainees_planned,
            "trainees_reached": result.totals.trainees_reached,
        },
    }


def asked_year(request: web.Request) -> int | None:
    """The year asked for in the query string, if any."""
    return query_year(request) if request.query.get("year") else None


@allow("admin")
async def create_plan(request: web.Request) -> web.Response:
    """POST /api/v1/plans: a draft plan of an organization for a year."""
    fields = checked(parse_plan(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await plans.create_plan(session, principal.scope, principal.actor, fields)
    return reply(plan_json(view), status=201)


@allow(*READERS)
async def list_plans(request: web.Request) -> web.Response:
    """GET /api/v1/plans?year=&org="""
    principal = request[PRINCIPAL_KEY]
    year = asked_year(request)
    async with read_session(request.app[DB_KEY]) as session:
        views = await plans.list_plans(
            session, principal.scope, year=year, org_code=request.query.get("org") or None
        )
    return reply({"plans": [plan_json(view) for view in views]})


@allow(*READERS)
async def get_plan(request: web.Request) -> web.Response:
    """GET /api/v1/plans/{org}/{year}"""
    org, year = plan_key(request)
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await plans.get_plan(session, principal.scope, org, year)
    return reply(plan_json(view))


@allow("admin")
async def update_plan(request: web.Request) -> web.Response:
    """PUT /api/v1/plans/{org}/{year}: replace the title and classes (draft or returned)."""
    org, year = plan_key(request)
    body = checked(parse_body(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await plans.update_plan(session, principal.scope, principal.actor, org, year, body)
    return reply(plan_json(view))


async def _act(request: web.Request, action: str, comment: str | None = None) -> web.Response:
    org, year = plan_key(request)
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await plans.act(
            session, principal.scope, principal.actor, org, year, action, comment
        )
    return reply(plan_json(view))


async def _comment(request: web.Request) -> str | None:
    """The review comment of a body, when a body is sent."""
    if not request.can_read_body:
        return None
    comment, problems = parse_comment(await read_json(request))
    if problems:
        raise Invalid("Some fields are missing or wrong.", fields=problems)
    return comment


@allow("admin")
async def file_plan(request: web.Request) -> web.Response:
    """POST /api/v1/plans/{org}/{year}/file: draft or returned → filed."""
    return await _act(request, "file")


@allow(*REVIEWERS)
async def accept_plan(request: web.Request) -> web.Response:
    """POST /api/v1/plans/{org}/{year}/accept: filed → accepted (the level above)."""
    return await _act(request, "accept", await _comment(request))


@allow(*REVIEWERS)
async def return_plan(request: web.Request) -> web.Response:
    """POST /api/v1/plans/{org}/{year}/return: filed → returned, with a comment."""
    return await _act(request, "return", await _comment(request))


@allow(*READERS)
async def get_plan_analysis(request: web.Request) -> web.Response:
    """GET /api/v1/plans/analysis?org=&year="""
    principal = request[PRINCIPAL_KEY]
    org = request.query.get("org", "")
    year = asked_year(request)
    if not org or year is None:
        raise Invalid(
            "Name the organization and the year: ?org=CODE&year=YYYY.",
            fields={name: v.REQUIRED for name in ("org", "year") if not request.query.get(name)},
        )
    async with read_session(request.app[DB_KEY]) as session:
        result = await plan_analysis.analyse(session, principal.scope, org, year)
    return reply(analysis_json(result))
