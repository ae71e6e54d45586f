"""How large a request body may be: 1 MiB, except on the routes that take whole files (member
imports, the session form's roster file), whose handlers read the body in chunks into a
temporary file instead of memory (aiohttp spools a form's file fields to temporary files)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

MAX_BODY = 1024 * 1024
MAX_IMPORT_BODY = 64 * 1024 * 1024  # a county's 200,000 members take about 10 MiB
LARGE_BODY_ROUTES = frozenset(
    {
        "api_import_members",
        "api_session_roster",
        "members_import",
        "session_create",
        "session_update",
    }
)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the file-taking routes their larger limit; every other route keeps MAX_BODY."""
    route = request.match_info.route.name if request.match_info.http_exception is None else None
    if route not in LARGE_BODY_ROUTES:
        return await handler(request)
    larger = request.clone(client_max_size=MAX_IMPORT_BODY)
    try:
        return await handler(larger)
    finally:
        # aiohttp closes the temporary files of the request it made, not of a clone's form.
        larger._finish()
