"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from server.auth import devices, tokens
from server.auth.access import allow, public
from server.auth.middleware import SESSION_COOKIE
from server.auth.throttle import Refused
from server.db.session import read_session, write_session
from server.domain.vocabulary import ROLES
from server.http.client_address import client_address
from server.http.i18n import LANG_COOKIE, translate_for
from server.keys import (
    DB_KEY,
    LOGIN_TOKEN_KEY,
    PASSWORDS_KEY,
    PRINCIPAL_KEY,
    SETTINGS_KEY,
    THROTTLE_KEY,
)
from server.pages.render import render
from server.services import identity
from server.services.clock import utcnow
from server.settings import SUPPORTED_LOCALES

PRELOGIN_COOKIE = "hetang_prelogin"
BAD_LOGIN = "The username or password is not correct."


def safe_next(value: str | None) -> str:
    """Only same-site paths may be a redirect target."""
    if not value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # Browsers drop tabs and newlines from URLs: "/\t/evil.example" would become "//evil…".
        return "/"
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _is_https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def _set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    name: str,
    value: str,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=http_only,
        samesite="Lax",
        secure=_is_https(request),
        path="/",
    )


def _login_form(
    request: web.Request,
    *,
    error: str | None,
    username: str,
    status: int,
    retry_after: int | None = None,
) -> web.Response:
    prelogin = request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)
    secret = request.app[SETTINGS_KEY].secret_key
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "username": username,
            "next": safe_next(request.query.get("next")),
            "login_csrf": tokens.keyed(secret, "login", prelogin),
            "retry_after": retry_after,
        },
        status=status,
    )
    _set_cookie(response, request, PRELOGIN_COOKIE, prelogin, max_age=3600)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@public
async def get_login(request: web.Request) -> web.StreamResponse:
    """GET /login"""
    if request.get(PRINCIPAL_KEY) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return _login_form(request, error=None, username="", status=200)


@public
async def post_login(request: web.Request) -> web.StreamResponse:
    """POST /login: identical answers for an unknown user and a wrong password."""
    form = await request.post()
    username = str(form.get("username", ""))[:64].strip().lower()
    password = str(form.get("password", ""))[:1024]
    gettext = translate_for(request)
    prelogin = request.cookies.get(PRELOGIN_COOKIE, "")
    secret = request.app[SETTINGS_KEY].secret_key
    if not prelogin or not tokens.equal(
        str(form.get("csrf_token", "")), tokens.keyed(secret, "login", prelogin)
    ):
        return _login_form(
            request,
            error=gettext("The form has expired; please try again."),
            username=username,
            status=403,
        )
    known = devices.is_known(secret, username, request.cookies.get(devices.DEVICE_COOKIE))
    attempt = request.app[THROTTLE_KEY].begin(
        username, client_address(request), time.monotonic(), known_device=known
    )
    if isinstance(attempt, Refused):
        return _login_form(
            request,
            error=gettext("Too many failed sign-ins. Try again in {seconds} seconds.").format(
                seconds=attempt.retry_after
            ),
            username=username,
            status=429,
            retry_after=attempt.retry_after,
        )
    try:
        raw = await _check_and_open(request, username, password)
        if raw is None:
            attempt.failed(time.monotonic())
        else:
            attempt.succeeded()
    finally:
        attempt.abandon()  # an error: the try frees its place (after the above, a no-op)
    if raw is None:
        return _login_form(request, error=gettext(BAD_LOGIN), username=username, status=401)
    response = web.HTTPFound(safe_next(request.query.get("next")))
    _set_cookie(
        response, request, SESSION_COOKIE, raw, max_age=request.app[SETTINGS_KEY].session_lifetime_s
    )
    _set_cookie(
        response,
        request,
        devices.DEVICE_COOKIE,
        devices.mint(secret, username),
        max_age=devices.DEVICE_LIFETIME_S,
    )
    response.del_cookie(PRELOGIN_COOKIE, path="/")
    raise response


async def _check_and_open(request: web.Request, username: str, password: str) -> str | None:
    """Check the password and, when right, open a login session (its cookie value); None when
    wrong. argon2 runs between two short transactions, never inside one: every writer (an
    agent's heartbeat, say) would wait for it."""
    async with read_session(request.app[DB_KEY]) as session:
        user = await identity.user_for_login(session, username)
    stored = user.password_hash if user is not None else None
    if not await request.app[PASSWORDS_KEY].verify(stored, password) or user is None:
        return None
    async with write_session(request.app[DB_KEY]) as session:
        # The same user with the same hash still: a password changed or an account closed
        # while the hash was being checked does not let the old password in.
        current = await identity.user_for_login(session, username)
        if current is None or current.id != user.id or current.password_hash != stored:
            return None
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await identity.close_login_session(session, old)
        return await identity.open_login_session(
            session, user.id, utcnow(), request.app[SETTINGS_KEY].session_lifetime_s
        )


@allow(*ROLES)
async def post_logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: the session ends on the server, not only in the browser."""
    raw = request.get(LOGIN_TOKEN_KEY)
    if raw:
        async with write_session(request.app[DB_KEY]) as session:
            await identity.close_login_session(session, raw)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@public
async def get_language(request: web.Request) -> web.StreamResponse:
    """GET /lang/{locale}?next=: remember the interface language in a cookie."""
    locale = request.match_info["locale"]
    response = web.HTTPFound(safe_next(request.query.get("next")))
    if locale in SUPPORTED_LOCALES:
        _set_cookie(response, request, LANG_COOKIE, locale, max_age=365 * 86400)
    raise response
