"""JSON handlers for the caller's personal API tokens: list, create (shown once), revoke."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.api_tokens import parse_token_request
from server.domain.vocabulary import ROLES
from server.http.body import checked, iso, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services import api_tokens
from server.services.api_tokens import TokenView
from server.services.clock import utcnow


def token_json(view: TokenView) -> dict[str, Any]:
    """A token in the API's words (never the token, never its digest)."""
    return {
        "id": view.id,
        "label": view.label,
        "hint": view.hint,
        "created_at": iso(view.created_at),
        "last_used_at": iso(view.last_used_at),
        "expires_at": iso(view.expires_at),
        "revoked_at": iso(view.revoked_at),
        "state": view.state(utcnow()),
    }


@allow(*ROLES)
async def list_tokens(request: web.Request) -> web.Response:
    """GET /api/v1/tokens: the caller's own tokens, newest first."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await api_tokens.list_own(session, principal.user_id)
    return reply({"tokens": [token_json(view) for view in views]})


@allow(*ROLES)
async def create_token(request: web.Request) -> web.Response:
    """POST /api/v1/tokens: a token of the caller's own; the answer carries it, the only time it
    is shown. Made with a token, it expires no later than that token."""
    fields = checked(parse_token_request(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view, token = await api_tokens.issue_own(
            session,
            principal.user_id,
            principal.actor,
            fields,
            not_after=principal.token_expires_at,
        )
    return reply({**token_json(view), "token": token}, status=201)


@allow(*ROLES)
async def revoke_token(request: web.Request) -> web.Response:
    """DELETE /api/v1/tokens/{id}: the caller's own, or an administrator's for a user of their
    subtree; any other token is 404."""
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await api_tokens.revoke(
            session,
            principal.actor,
            request.match_info["id"],
            own_user_id=principal.user_id,
            admin_scope=principal.scope if principal.role == "admin" else None,
        )
    return reply(token_json(view))
