"""The auth middleware: enforce each handler's declared access, cookies with CSRF, bearer tokens."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from server.auth import tokens
from server.auth.access import Access, access_of
from server.auth.principal import Principal
from server.db.session import read_session, write_session
from server.errors import Forbidden, Internal, Invalid, Unauthorized
from server.http.error_middleware import wants_html
from server.keys import (
    AGENT_VENUE_KEY,
    DB_KEY,
    LOGIN_TOKEN_KEY,
    PRINCIPAL_KEY,
    SETTINGS_KEY,
)
from server.services import identity
from server.services.clock import utcnow

SESSION_COOKIE = "hetang_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def csrf_token_for(request: web.Request, login_token: str) -> str:
    """The CSRF token bound to one login session (derived, so nothing more is stored)."""
    return tokens.keyed(request.app[SETTINGS_KEY].secret_key, "csrf", login_token)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller and check it against the route's declared access."""
    match = request.match_info
    if match.http_exception is not None:
        return await handler(request)  # unknown route or method: the error middleware answers
    if isinstance(match.route.resource, web.StaticResource):
        return await handler(request)
    access = access_of(match.handler)
    if access is None:
        raise Internal("This address has no declared access rule.")
    if access.kind == "agent":
        await _authenticate_agent(request)
    elif access.kind == "user":
        await _authenticate_user(request, access)
    else:
        await _note_optional_login(request)
    if request.method not in SAFE_METHODS and request.content_type in FORM_TYPES:
        await _parse_form(request)  # parsed once here; handlers get aiohttp's cached copy
    return await handler(request)


async def _parse_form(request: web.Request) -> None:
    """Parse a submitted form; a malformed one is the sender's mistake (422), not ours (500)."""
    try:
        await request.post()
    except (ValueError, LookupError, HttpProcessingError):
        # Bad multipart framing or headers, bytes not in the declared charset, unknown charsets.
        raise Invalid("The request could not be read.") from None


async def _authenticate_agent(request: web.Request) -> None:
    raw = _bearer(request)
    if raw is None or not raw.startswith(tokens.VENUE_TOKEN_PREFIX):
        raise Unauthorized("A venue token is required (Authorization: Bearer hv_…).")
    async with read_session(request.app[DB_KEY]) as session:
        venue = await identity.venue_for_token(session, raw)
    if venue is None:
        raise Unauthorized("The venue token is not valid (it may have been rotated).")
    request[AGENT_VENUE_KEY] = venue


async def _authenticate_user(request: web.Request, access: Access) -> None:
    principal = await _user_from_token(request) or await _user_from_cookie(request)
    if principal is None:
        if wants_html(request) and request.method in SAFE_METHODS:
            raise web.HTTPFound("/login?next=" + quote(request.path_qs, safe=""))
        raise Unauthorized("Please sign in first.")
    if principal.role not in access.roles:
        raise Forbidden("Your role may not do this.")
    request[PRINCIPAL_KEY] = principal


async def _user_from_token(request: web.Request) -> Principal | None:
    raw = _bearer(request)
    if raw is None:
        return None
    if not raw.startswith(tokens.USER_TOKEN_PREFIX):
        raise Unauthorized("The API token is not valid.")
    now = utcnow()
    async with read_session(request.app[DB_KEY]) as session:
        found = await identity.principal_for_api_token(session, raw, now)
    if found is None:
        raise Unauthorized("The API token is not valid (it may have expired or been revoked).")
    principal, stale = found
    if stale:
        async with write_session(request.app[DB_KEY]) as session:
            await identity.touch_api_token(session, raw, now)
    return principal


async def _user_from_cookie(request: web.Request) -> Principal | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    async with read_session(request.app[DB_KEY]) as session:
        principal = await identity.principal_for_login(session, raw, utcnow())
    if principal is None:
        return None
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, raw)
    request[LOGIN_TOKEN_KEY] = raw
    return principal


async def _note_optional_login(request: web.Request) -> None:
    """Public pages still know who is signed in (for the header), without requiring it."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return
    async with read_session(request.app[DB_KEY]) as session:
        principal = await identity.principal_for_login(session, raw, utcnow())
    if principal is not None:
        request[PRINCIPAL_KEY] = principal
        request[LOGIN_TOKEN_KEY] = raw


async def _check_csrf(request: web.Request, login_token: str) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        allowed = request.app[SETTINGS_KEY].trusted_origins
        if origin not in allowed:
            raise Forbidden("The request came from another site (CSRF check failed).")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in FORM_TYPES:
        await _parse_form(request)
        form = await request.post()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = csrf_token_for(request, login_token)
    if sent is None or not tokens.equal(sent, expected):
        raise Forbidden("The form has expired or the CSRF token is missing; reload the page.")
