"""User administration: the list, adding a user, changing one, setting a new password, and the
changed user's API tokens (revoked through pages/tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server.auth.access import allow
from server.auth.passwords import MIN_PASSWORD_LENGTH
from server.db.session import read_session, write_session
from server.domain import validation as v
from server.domain.api_tokens import TOKEN_STATE_LABELS
from server.domain.vocabulary import ROLES
from server.errors import ApiError
from server.http.body import checked
from server.keys import DB_KEY, PASSWORDS_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form, redirect_with_notice
from server.pages.render import render
from server.services import api_tokens, organizations, users
from server.services.clock import utcnow

PASSWORD_TOO_SHORT = "must have at least 8 characters"  # noqa: S105  (a message)


def parse_password(raw: Mapping[str, object]) -> tuple[str | None, v.Problems]:
    """A new password: any text of at least MIN_PASSWORD_LENGTH characters."""
    problems = v.Problems()
    value = raw.get("password")
    if not isinstance(value, str) or not value:
        problems["password"] = v.REQUIRED
        return None, problems
    if len(value) < MIN_PASSWORD_LENGTH:
        problems["password"] = PASSWORD_TOO_SHORT
        return None, problems
    if len(value) > 1024:
        problems["password"] = v.TOO_LONG
        return None, problems
    return value, problems


def _org_code(form: Mapping[str, str]) -> str | None:
    return form.get("org_code", "").strip() or None


async def _users_page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    problem: FormProblem | None = None,
    editing: str | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    editing = editing or request.query.get("edit") or None
    async with read_session(request.app[DB_KEY]) as session:
        accounts = await users.list_users(session, principal.scope)
        tree = await organizations.list_tree(session, principal.scope)
        edited = await users.get_user(session, principal.scope, editing) if editing else None
        user_tokens = (
            await api_tokens.list_of_user(session, principal.scope, editing) if editing else []
        )
    return render(
        request,
        "users.html",
        {
            "users": accounts,
            "tree": tree,
            "roles": ROLES,
            "may_grant_whole_tree": principal.scope.path is None,
            "edited": edited,
            "user_tokens": user_tokens,
            "token_state_labels": TOKEN_STATE_LABELS,
            "now": utcnow(),
            "form": form or {},
            "problem": problem,
            "min_password": MIN_PASSWORD_LENGTH,
        },
        status=problem.status if problem else 200,
    )


@allow("admin")
async def get_users(request: web.Request) -> web.Response:
    """GET /users[?edit=USERNAME]"""
    return await _users_page(request)


@allow("admin")
async def create_user(request: web.Request) -> web.Response:
    """POST /users: a new account with an initial password."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    try:
        password = checked(parse_password(form))
        password_hash = await request.app[PASSWORDS_KEY].hash(password)
        async with write_session(request.app[DB_KEY]) as session:
            view = await users.create_user(
                session,
                principal.scope,
                principal.actor,
                username=form.get("username", ""),
                display_name=form.get("display_name", "").strip()[:100],
                role=form.get("role", ""),
                org_code=_org_code(form),
                password_hash=password_hash,
            )
    except ApiError as error:
        form.pop("password", None)
        return await _users_page(request, form=form, problem=problem_of(request, "create", error))
    redirect_with_notice(request, "users", "user_created", username=view.username)


@allow("admin")
async def update_user(request: web.Request) -> web.Response:
    """POST /users/{username}: role, organization, display name, whether they may sign in."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    username = request.match_info["username"]
    try:
        async with write_session(request.app[DB_KEY]) as session:
            view = await users.update_user(
                session,
                principal.scope,
                principal.actor,
                username,
                role=form.get("role", ""),
                org_code=_org_code(form),
                display_name=form.get("display_name", "").strip()[:100],
                is_active=form.get("is_active") == "on",
            )
    except ApiError as error:
        problem = problem_of(request, "update", error)
        return await _users_page(request, form=form, problem=problem, editing=username)
    redirect_with_notice(request, "users", "user_updated", username=view.username)


@allow("admin")
async def set_password(request: web.Request) -> web.Response:
    """POST /users/{username}/password: a new password; the user's browsers are signed out."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    username = request.match_info["username"]
    try:
        password = checked(parse_password(form))
        password_hash = await request.app[PASSWORDS_KEY].hash(password)
        async with write_session(request.app[DB_KEY]) as session:
            await users.set_password(
                session, principal.scope, principal.actor, username, password_hash
            )
    except ApiError as error:
        problem = problem_of(request, "password", error)
        return await _users_page(request, problem=problem, editing=username)
    redirect_with_notice(request, "users", "password_changed", username=username.lower())
