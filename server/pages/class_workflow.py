"""Class workflow pages (十步工作法): a plan class with its ten steps and their print templates,
marking a step, printing a template, and the city's step list (rename and reorder)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.auth.principal import WHOLE_TREE
from server.db.session import read_session, write_session
from server.domain.class_workflow import (
    STEP_LABELS,
    TEMPLATES_BY_KEY,
    PrintTemplate,
    parse_mark,
    parse_step_list,
)
from server.domain.sessions import ClassRef
from server.domain.times import parse_year
from server.domain.vocabulary import READERS, VENUE_READERS, WRITERS
from server.errors import ApiError, NotFound
from server.http.body import checked
from server.http.i18n import translate_for
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form
from server.pages.print_selection import choices, parse_selection, venue_sheets, whole_runs
from server.pages.render import render
from server.services import class_sheets, class_workflow, print_scope
from server.services.class_sheets import ClassSheet
from server.services.class_workflow import NO_CLASS, ClassFacts, StepState
from server.services.clock import utcnow


def _ref(request: web.Request) -> ClassRef:
    """The class the address names; a year that is no year names no class."""
    info = request.match_info
    year = parse_year(info["year"])
    if year is None:
        raise NotFound(NO_CLASS, code=info["code"], year=info["year"], org=info["org"])
    return ClassRef(info["org"], year, info["code"])


async def _class_page(
    request: web.Request,
    *,
    problem: FormProblem | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        facts = await class_workflow.load_class(session, principal.scope, _ref(request))
        steps = await class_workflow.class_steps(session, facts.id)
        sheet = await class_sheets.class_sheet(session, principal.scope, facts)
    return render(
        request,
        "class_workflow.html",
        {
            "c": facts,
            "steps": steps,
            "sheet": sheet,
            "done_count": sum(step.done for step in steps),
            "may_mark": principal.role in WRITERS,
            "problem": problem,
            "form": form or {},
        },
        status=problem.status if problem else 200,
    )


@allow(*READERS)
async def get_class(request: web.Request) -> web.Response:
    """GET /plans/{org}/{year}/classes/{code}: the class's steps, runs and print templates."""
    return await _class_page(request)


@allow(*WRITERS)
async def mark_step(request: web.Request) -> web.Response:
    """POST /plans/{org}/{year}/classes/{code}/steps/{key} (done=on|off, note): back to the
    class page; a bad note shows the page again with the problem, nothing stored."""
    principal = request[PRINCIPAL_KEY]
    ref, key = _ref(request), request.match_info["key"]
    form = await read_form(request)
    try:
        mark = checked(parse_mark(form))
        async with write_session(request.app[DB_KEY]) as session:
            await class_workflow.mark_step(
                session, principal.scope, principal.actor, ref, key, mark, utcnow()
            )
    except ApiError as error:
        if error.status != 422:
            raise
        if key not in STEP_LABELS:
            raise NotFound("No workflow step {key}.", key=key) from None
        problem = problem_of(request, f"step-{key}", error)
        return await _class_page(request, problem=problem, form=form)
    url = request.app.router["class_workflow"].url_for(
        org=ref.org_code, year=str(ref.year), code=ref.code
    )
    raise web.HTTPSeeOther(f"{url}#step-{key}")


@allow(*READERS)
async def print_template(request: web.Request) -> web.Response:
    """GET /plans/{org}/{year}/classes/{code}/print/{template}: a form filled with the class
    (the sign-in sheet: a sheet per run, every venue's trainees; ?run=&venue= choose one)."""
    principal = request[PRINCIPAL_KEY]
    name = request.match_info["template"]
    async with read_session(request.app[DB_KEY]) as session:
        facts = await class_workflow.load_class(session, principal.scope, _ref(request))
        template = TEMPLATES_BY_KEY.get(name)
        if template is None:
            raise NotFound("No print template {template}.", template=name)
        steps = await class_workflow.class_steps(session, facts.id)
        sheet = await class_sheets.class_sheet(session, principal.scope, facts)
    extra: dict[str, Any] = {}
    if template.key == "signin_sheet":
        selection = parse_selection(request.query)
        whole = selection.run is None and selection.venue is None
        parts = whole_runs(sheet.runs) if whole else venue_sheets(sheet.runs, selection)
        extra = {"parts": parts, "choices": choices(sheet.runs), "selection": selection}
    return _render_print(request, template, facts, steps, sheet, extra)


@allow(*VENUE_READERS)
async def print_signin_sheet(request: web.Request) -> web.Response:
    """GET /plans/{org}/{year}/classes/{code}/signin-sheet?run=&venue=: the sign-in sheet
    (开班签到表) a sheet per run and venue. A venue's staff print it for the venues of their
    subtree only, and find the class when one of its runs is at such a venue or it lies in
    their subtree; another venue is not found."""
    principal = request[PRINCIPAL_KEY]
    venue_scope = principal.venue_scope
    ref = _ref(request)
    selection = parse_selection(request.query)
    async with read_session(request.app[DB_KEY]) as session:
        if venue_scope is None:
            facts = await class_workflow.load_class(session, principal.scope, ref)
            sheet = await class_sheets.class_sheet(session, principal.scope, facts)
            allowed: frozenset[str] | None = None
        else:
            # The class may lie above their subtree (a city class with a branch venue): its
            # runs and everyone on their venues' rosters are read whole, then cut to the venues.
            facts = await class_workflow.load_class(session, WHOLE_TREE, ref)
            sheet = await class_sheets.class_sheet(session, WHOLE_TREE, facts)
            allowed = await print_scope.venue_codes_in(session, venue_scope)
            mine = choices(sheet.runs, allowed)
            if not mine and not await print_scope.class_in(session, venue_scope, ref):
                raise NotFound(NO_CLASS, code=ref.code, year=ref.year, org=ref.org_code)
        steps = await class_workflow.class_steps(session, facts.id)
    extra = {
        "parts": venue_sheets(sheet.runs, selection, allowed),
        "choices": choices(sheet.runs, allowed),
        "selection": selection,
        "venue_sheets": True,
    }
    return _render_print(request, TEMPLATES_BY_KEY["signin_sheet"], facts, steps, sheet, extra)


def _render_print(
    request: web.Request,
    template: PrintTemplate,
    facts: ClassFacts,
    steps: list[StepState],
    sheet: ClassSheet,
    extra: dict[str, Any],
) -> web.Response:
    gettext = translate_for(request)
    step_names = {step.key: step.name or gettext(step.label) for step in steps}
    number = next(step.position for step in steps if step.key == template.step)
    return render(
        request,
        template.file,
        {
            "c": facts,
            "sheet": sheet,
            "doc": template,
            "steps": steps,
            "step_name": step_names[template.step],
            "step_number": number,
            "step_names": step_names,
            "printed_at": utcnow(),
            **extra,
        },
    )


async def _steps_page(
    request: web.Request,
    *,
    problem: FormProblem | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    class_workflow.require_whole_tree(principal.scope)
    async with read_session(request.app[DB_KEY]) as session:
        steps = await class_workflow.current_steps(session)
    return render(
        request,
        "workflow_steps.html",
        {
            "steps": steps,
            "problem": problem,
            "form": form,
            "saved": request.query.get("saved") == "1" and problem is None,
        },
        status=problem.status if problem else 200,
    )


@allow("admin")
async def get_workflow_steps(request: web.Request) -> web.Response:
    """GET /workflow-steps: the city's ten steps, to rename and reorder (whole-tree admin)."""
    return await _steps_page(request)


@allow("admin")
async def update_workflow_steps(request: web.Request) -> web.Response:
    """POST /workflow-steps (name_<key>, position_<key> for all ten): saved, or the form again
    with its problems and nothing stored."""
    principal = request[PRINCIPAL_KEY]
    class_workflow.require_whole_tree(principal.scope)
    form = await read_form(request)
    gettext = translate_for(request)
    defaults = {key: gettext(label) for key, label in STEP_LABELS.items()}
    try:
        settings = checked(parse_step_list(form, defaults))
        async with write_session(request.app[DB_KEY]) as session:
            await class_workflow.update_steps(
                session, principal.scope, principal.actor, settings, utcnow()
            )
    except ApiError as error:
        if error.status != 422:
            raise
        return await _steps_page(request, problem=problem_of(request, "steps", error), form=form)
    url = request.app.router["workflow_steps"].url_for().with_query(saved="1")
    raise web.HTTPSeeOther(str(url))
