"""Training-plan pages (培训计划备案): the year's plans with the analysis of the caller's level,
starting and editing a plan, its page with filing and the level above's review."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.plans import parse_body, parse_comment, parse_plan, reviews
from server.domain.vocabulary import (
    EDITABLE_PLAN_STATES,
    FIRST_YEAR,
    LAST_YEAR,
    READERS,
    REVIEWERS,
)
from server.errors import Conflict, Invalid
from server.http.body import checked, query_year, this_year
from server.http.i18n import translate_for
from server.http.reads import plan_key
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form
from server.pages.plan_form import PlanForm, on_form
from server.pages.render import render
from server.services import organizations, plan_analysis, plans

PLAN_STATE_LABELS = MappingProxyType(
    {
        "none": "Not filed",
        "draft": "Draft",
        "filed": "Filed, awaiting review",
        "accepted": "Accepted",
        "returned": "Returned for changes",
    }
)
# a plan state → the badge style of the same meaning elsewhere
PLAN_BADGES = MappingProxyType(
    {
        "none": "state-never",
        "draft": "state-idle",
        "filed": "session-finalized",
        "accepted": "session-approved",
        "returned": "state-blocked",
    }
)
PLAN_DONE_MESSAGES = MappingProxyType(
    {
        "created": "The plan was saved as a draft. File it when it is complete.",
        "updated": "The changes to the plan were saved.",
        "file": "The plan was filed; the level above will review it.",
        "accept": "The plan was accepted.",
        "return": "The plan was returned with your comment.",
    }
)


def _plan_url(request: web.Request, org: str, year: int, done: str | None = None) -> str:
    url = request.app.router["plan"].url_for(org=org, year=str(year))
    return str(url.with_query({"done": done}) if done else url)


@allow(*READERS)
async def get_plans(request: web.Request) -> web.Response:
    """GET /plans?year=&org=: the year's plans, and the analysis of the caller's level (or of
    the organization asked for)."""
    principal = request[PRINCIPAL_KEY]
    year = query_year(request)
    async with read_session(request.app[DB_KEY]) as session:
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
        views = await plans.list_plans(session, principal.scope, year=year)
        code = request.query.get("org") or principal.org_code or (tree[0].code if tree else "")
        analysis = (
            await plan_analysis.analyse(session, principal.scope, code, year) if code else None
        )
    return render(
        request,
        "plans.html",
        {
            "year": year,
            "min_year": FIRST_YEAR,
            "max_year": LAST_YEAR,
            "plans": views,
            "analysis": analysis,
            "tree": tree,
            "state_labels": PLAN_STATE_LABELS,
            "badges": PLAN_BADGES,
            "may_create": principal.role == "admin",
        },
    )


async def _form_page(
    request: web.Request,
    form: PlanForm,
    *,
    editing: tuple[str, int] | None = None,
    problem: FormProblem | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
    return render(
        request,
        "plan_form.html",
        {
            "form": form,
            "editing": editing,
            "tree": [node for node in tree if node.level != "branch"],
            "problem": problem,
            "bad": problem.fields if problem else {},
        },
        status=problem.status if problem else 200,
    )


@allow("admin")
async def new_plan(request: web.Request) -> web.Response:
    """GET /plans/new: an empty plan form for the caller's organization and this year."""
    principal = request[PRINCIPAL_KEY]
    return await _form_page(request, PlanForm.blank(principal.org_code or "", this_year(request)))


@allow("admin")
async def create_plan(request: web.Request) -> web.Response:
    """POST /plans: save a new plan as a draft."""
    form = PlanForm.from_post(await read_form(request))
    raw, rows = form.to_raw()
    principal = request[PRINCIPAL_KEY]
    try:
        fields = checked(parse_plan(raw))
        async with write_session(request.app[DB_KEY]) as session:
            view = await plans.create_plan(session, principal.scope, principal.actor, fields)
    except (Invalid, Conflict) as error:
        problem = on_form(problem_of(request, "plan", error), rows)
        return await _form_page(request, form, problem=problem)
    raise web.HTTPSeeOther(_plan_url(request, view.org_code, view.year, "created"))


async def _plan_page(
    request: web.Request, problem: FormProblem | None = None, done: str | None = None
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    org, year = plan_key(request)
    async with read_session(request.app[DB_KEY]) as session:
        view = await plans.get_plan(session, principal.scope, org, year)
        analysis = await plan_analysis.analyse(session, principal.scope, org, year)
    admin = principal.role == "admin"
    message = PLAN_DONE_MESSAGES.get(done or "")
    return render(
        request,
        "plan.html",
        {
            "plan": view,
            "tallies": {tally.code: tally for tally in analysis.classes},
            "totals": analysis.totals,
            "without_first_lesson": analysis.without_first_lesson,
            "state_labels": PLAN_STATE_LABELS,
            "badges": PLAN_BADGES,
            "may_edit": admin and view.state in EDITABLE_PLAN_STATES,
            "may_review": principal.role in REVIEWERS
            and view.state == "filed"
            and reviews(principal.scope.path, view.parent_path),
            "done": translate_for(request)(message) if message else None,
            "problem": problem,
        },
        status=problem.status if problem else 200,
    )


@allow(*READERS)
async def get_plan(request: web.Request) -> web.Response:
    """GET /plans/{org}/{year}"""
    return await _plan_page(request, done=request.query.get("done"))


@allow("admin")
async def edit_plan(request: web.Request) -> web.Response:
    """GET /plans/{org}/{year}/edit: the form filled in, while in draft or returned."""
    principal = request[PRINCIPAL_KEY]
    org, year = plan_key(request)
    async with read_session(request.app[DB_KEY]) as session:
        view = await plans.get_plan(session, principal.scope, org, year)
    if view.state not in EDITABLE_PLAN_STATES:
        error = Conflict(plans.STATE_MESSAGES["edit"])
        return await _plan_page(request, problem_of(request, "action", error))
    return await _form_page(request, PlanForm.of(view.body), editing=(org, year))


@allow("admin")
async def update_plan(request: web.Request) -> web.Response:
    """POST /plans/{org}/{year}/edit: replace the plan's title and classes."""
    form = PlanForm.from_post(await read_form(request))
    raw, rows = form.to_raw()
    principal = request[PRINCIPAL_KEY]
    org, year = plan_key(request)
    try:
        async with write_session(request.app[DB_KEY]) as session:
            # Whether the caller sees the plan, before whatever the form holds.
            await plans.get_plan(session, principal.scope, org, year)
            body = checked(parse_body(raw))
            await plans.update_plan(session, principal.scope, principal.actor, org, year, body)
    except Conflict as error:
        return await _plan_page(request, problem_of(request, "action", error))
    except Invalid as error:
        problem = on_form(problem_of(request, "plan", error), rows)
        return await _form_page(request, form, editing=(org, year), problem=problem)
    raise web.HTTPSeeOther(_plan_url(request, org, year, "updated"))


async def _act(request: web.Request, action: str, form: Mapping[str, str]) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    org, year = plan_key(request)
    try:
        comment, problems = parse_comment(form)
        if problems:
            raise Invalid("Some fields are missing or wrong.", fields=problems)
        async with write_session(request.app[DB_KEY]) as session:
            await plans.act(session, principal.scope, principal.actor, org, year, action, comment)
    except (Conflict, Invalid) as error:
        return await _plan_page(request, problem_of(request, "action", error))
    raise web.HTTPSeeOther(_plan_url(request, org, year, action))


@allow("admin")
async def file_plan(request: web.Request) -> web.Response:
    """POST /plans/{org}/{year}/file"""
    return await _act(request, "file", await read_form(request))


@allow(*REVIEWERS)
async def review_plan(request: web.Request) -> web.Response:
    """POST /plans/{org}/{year}/accept|return: the level above's decision."""
    return await _act(request, request.match_info["action"], await read_form(request))
