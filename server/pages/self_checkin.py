"""The phone page a room screen's QR code opens (扫码签到): public, reached by a current code."""

from __future__ import annotations

import secrets

from aiohttp import web

from server.auth.access import public
from server.db.session import read_session
from server.domain.checkin_codes import PASS_LIFETIME_S, parse
from server.errors import ApiError
from server.http.client_address import client_address
from server.http.i18n import translate_for
from server.keys import DB_KEY, SETTINGS_KEY
from server.pages.render import render
from server.services import self_checkin
from server.services.clock import utcnow

PHONE_COOKIE_MAX_AGE = 400 * 86400


def set_phone_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """Keep the phone's long-lived random id (made on its first scan)."""
    response.set_cookie(
        self_checkin.PHONE_COOKIE,
        value,
        max_age=PHONE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",  # sent on the scan's navigation too: the phone keeps one id
        secure=request.secure or request.headers.get("X-Forwarded-Proto", "") == "https",
        path="/",
    )


@public
async def get_self_checkin(request: web.Request) -> web.StreamResponse:
    """GET /c/{venue}/{session}/{window}/{code}: the form for a current code, or why not."""
    match = request.match_info
    code = parse(match["venue"], match["session"], match["window"], match["code"])
    phone = request.cookies.get(self_checkin.PHONE_COOKIE) or secrets.token_urlsafe(24)
    error, scanned, sealed = None, None, ""
    try:
        async with read_session(request.app[DB_KEY]) as session:
            scanned = await self_checkin.scan(session, code, client_address(request), utcnow())
    except ApiError as refused:
        error = refused
    else:
        secret = self_checkin.pass_secret(request.app[SETTINGS_KEY].secret_key)
        sealed = scanned.scan_pass.seal(secret, self_checkin.phone_digest(phone))
    response = render(
        request,
        "self_checkin.html",
        {
            "scanned": scanned,
            "error": error.describe(translate_for(request)) if error else None,
            "scan_pass": sealed,
            "minutes": PASS_LIFETIME_S // 60,
            "zone": request.app[SETTINGS_KEY].timezone,  # the time said back, as every page
        },
        status=error.status if error else 200,
    )
    set_phone_cookie(request, response, phone)
    return response
