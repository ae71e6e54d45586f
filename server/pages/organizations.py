"""The organization tree page, and adding an organization to it."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.organizations import parse_org
from server.domain.vocabulary import ORG_LEVELS, READERS
from server.errors import ApiError
from server.http.body import checked
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form, redirect_with_notice
from server.pages.render import render
from server.services import organizations


async def _tree_page(
    request: web.Request, form: dict[str, str] | None = None, problem: FormProblem | None = None
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        nodes = await organizations.list_tree(session, principal.scope)
    return render(
        request,
        "organizations.html",
        {
            "nodes": nodes,
            "levels": ORG_LEVELS,
            "may_add_root": principal.scope.path is None,
            "form": form or {},
            "problem": problem,
        },
        status=problem.status if problem else 200,
    )


@allow(*READERS)
async def get_organizations(request: web.Request) -> web.Response:
    """GET /organizations: the tree in the caller's scope with member counts."""
    return await _tree_page(request)


@allow("admin")
async def create_organization(request: web.Request) -> web.Response:
    """POST /organizations"""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    try:
        fields = checked(parse_org(form))
        async with write_session(request.app[DB_KEY]) as session:
            view = await organizations.create_org(session, principal.scope, principal.actor, fields)
    except ApiError as error:
        problem = problem_of(request, "organization", error)
        return await _tree_page(request, form, problem)
    redirect_with_notice(request, "organizations", "organization_created", code=view.code)
