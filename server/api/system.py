"""Health check and the caller's own identity."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from server.api.body import reply
from server.auth.access import ALL_ROLES, allow, public
from server.db.session import read_session
from server.keys import DB_KEY, PRINCIPAL_KEY


@public
async def get_health(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the database answers."""
    async with read_session(request.app[DB_KEY]) as session:
        await session.execute(text("SELECT 1"))
    return reply({"status": "ok"})


@allow(*sorted(ALL_ROLES))
async def get_me(request: web.Request) -> web.Response:
    """GET /api/v1/me"""
    principal = request[PRINCIPAL_KEY]
    return reply(
        {
            "username": principal.username,
            "display_name": principal.display_name,
            "role": principal.role,
            "org_code": principal.org_code,
        }
    )
