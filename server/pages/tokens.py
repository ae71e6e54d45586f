"""The caller's own API tokens page: the list, a new token (shown once), revoking; revoking from
the users page goes through here too."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.api_tokens import (
    DEFAULT_TOKEN_DAYS,
    MAX_LABEL_LENGTH,
    MAX_TOKEN_DAYS,
    TOKEN_STATE_LABELS,
    TokenRequest,
    parse_token_request,
)
from server.domain.vocabulary import ROLES
from server.errors import ApiError
from server.http.body import checked
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.forms import FormProblem, problem_of, read_form, redirect_with_notice
from server.pages.render import render
from server.services import api_tokens
from server.services.api_tokens import TokenView
from server.services.clock import utcnow


async def _tokens_page(
    request: web.Request,
    *,
    form: dict[str, str] | None = None,
    problem: FormProblem | None = None,
    created: tuple[TokenView, str] | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await api_tokens.list_own(session, principal.user_id)
    return render(
        request,
        "tokens.html",
        {
            "tokens": views,
            "token_state_labels": TOKEN_STATE_LABELS,
            "now": utcnow(),
            "form": form or {},
            "problem": problem,
            "created": created[0] if created else None,
            "new_token": created[1] if created else None,
            "default_days": DEFAULT_TOKEN_DAYS,
            "max_days": MAX_TOKEN_DAYS,
            "max_label": MAX_LABEL_LENGTH,
        },
        status=problem.status if problem else 200,
    )


def _parse_form(form: dict[str, str]) -> TokenRequest:
    """The form's text as the API's values: a blank lifetime is the default, digits a number."""
    days_text = form.get("expires_days", "").strip()
    days: object = None
    if days_text:
        days = int(days_text) if days_text.isascii() and days_text.isdigit() else days_text
    return checked(parse_token_request({"label": form.get("label", ""), "expires_days": days}))


@allow(*ROLES)
async def get_tokens(request: web.Request) -> web.Response:
    """GET /tokens"""
    return await _tokens_page(request)


@allow(*ROLES)
async def create_token(request: web.Request) -> web.Response:
    """POST /tokens: a token of one's own, shown on the answer, the only time anybody sees it."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    try:
        fields = _parse_form(form)
        async with write_session(request.app[DB_KEY]) as session:
            created = await api_tokens.issue_own(
                session,
                principal.user_id,
                principal.actor,
                fields,
                not_after=principal.token_expires_at,
            )
    except ApiError as error:
        return await _tokens_page(request, form=form, problem=problem_of(request, "token", error))
    return await _tokens_page(request, created=created)


@allow(*ROLES)
async def revoke_token(request: web.Request) -> web.Response:
    """POST /tokens/{id}/revoke: one's own, or an administrator's for a user of their subtree
    (then back to that user on the users page when `back=users`); any other token is 404."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await api_tokens.revoke(
            session,
            principal.actor,
            request.match_info["id"],
            own_user_id=principal.user_id,
            admin_scope=principal.scope if principal.role == "admin" else None,
        )
    hint, username = view.hint, view.username
    if form.get("back") == "users" and principal.role == "admin":
        redirect_with_notice(
            request, "users", "token_revoked", hint=hint, username=username, edit=username
        )
    redirect_with_notice(request, "tokens", "token_revoked", hint=hint, username=username)
