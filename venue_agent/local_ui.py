"""The staff page on 127.0.0.1: the session, roster search, check-in buttons, who is in (behind
the staff PIN when one is set); and the room screen (/screen), which plays the broadcast."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import segno
from aiohttp import web

from passthrough.wiring import NoCommonCodec
from venue_agent import clock, page, screen_page
from venue_agent.checkin_code import CodeMaker
from venue_agent.desk import KINDS, Desk
from venue_agent.link import Link
from venue_agent.outbox import Outbox
from venue_agent.receiver import Receiver
from venue_agent.schedule import CODE_FIELDS
from venue_agent.screen import NotLive, Screen
from venue_agent.staff_pin import MAX_LENGTH, StaffGate
from venue_agent.status import rejected_json, snapshot

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class UiContext:
    """What the page's handlers read and act on."""

    desk: Desk
    outbox: Outbox
    link: Link
    csrf_token: str
    port: int
    agent_version: str
    receiver: Receiver | None = None
    screen: Screen | None = None
    staff_gate: StaffGate | None = None  # None: no staff PIN, every local process is trusted
    codes: CodeMaker | None = None  # the room screen's self check-in codes (None: none shown)


UI_KEY = web.AppKey("ui", UiContext)
ROSTER_SHOWN = 50  # a search shows this many members at most, and says how many matched
SECURITY_HEADERS = MappingProxyType(
    {
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
)
# What needs no staff PIN: the room screen (it shows only the lesson), the PIN form and the files
# both pages load. Every other route, those added later too, wants the staff cookie.
OPEN_ROUTES = frozenset(
    {
        "css",
        "js",
        "favicon",
        "login",
        "login_js",
        "screen",
        "screen_css",
        "screen_js",
        "screen_state",
        "screen_offer",
        "screen_code",
    }
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda value: json.dumps(value, ensure_ascii=False)
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status)


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only this machine's own address as Host (no DNS rebinding); CSRF token on every POST."""
    ui = request.app[UI_KEY]
    if request.host not in (f"127.0.0.1:{ui.port}", f"localhost:{ui.port}"):
        return web.Response(status=403, text="forbidden host")
    # Bytes: compare_digest refuses a str that is not ASCII, and a header is anyone's to send.
    if request.method == "POST" and not hmac.compare_digest(
        request.headers.get("X-CSRF-Token", "").encode("utf-8", "replace"),
        ui.csrf_token.encode("ascii"),
    ):
        return _error(403, "forbidden", "页面已过期，请刷新")
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def staff_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a staff PIN set, a route not in OPEN_ROUTES wants the cookie a right PIN earned:
    whoever opens the page gets the PIN form, any other request 401."""
    ui = request.app[UI_KEY]
    gate, name = ui.staff_gate, request.match_info.route.name
    if (
        gate is None
        or name is None  # not found, method not allowed
        or name in OPEN_ROUTES
        or gate.admits(request.cookies.get(gate.cookie_name))
    ):
        return await handler(request)
    if name == "page":
        return _text(page.render_pin_form(ui.csrf_token), "text/html")
    return _error(401, "unauthorized", "请先输入会场工作人员口令")


def _text(text: str, content_type: str) -> web.Response:
    return web.Response(text=text, content_type=content_type, charset="utf-8")


async def get_page(request: web.Request) -> web.Response:
    """GET /"""
    html = page.render_page(request.app[UI_KEY].csrf_token)
    return _text(html, "text/html")


async def get_css(request: web.Request) -> web.Response:
    """GET /app.css"""
    return _text(page.CSS, "text/css")


async def get_js(request: web.Request) -> web.Response:
    """GET /app.js"""
    return _text(page.JS, "text/javascript")


async def get_login_js(request: web.Request) -> web.Response:
    """GET /login.js: the PIN form's script."""
    return _text(page.PIN_JS, "text/javascript")


async def post_login(request: web.Request) -> web.Response:
    """POST /login {pin}: the right staff PIN earns the staff cookie; wrong ones back off."""
    gate = request.app[UI_KEY].staff_gate
    if gate is None:
        return _error(404, "not_found", "本机未设置工作人员口令")
    pin = (await _body(request)).get("pin")
    if not isinstance(pin, str) or not pin or len(pin) > MAX_LENGTH:
        return _error(422, "invalid", "请输入口令")
    answer = gate.try_pin(pin)
    if answer.retry_after_s > 0:
        wait = math.ceil(answer.retry_after_s)
        response = _error(429, "rate_limited", f"口令错误次数过多，请 {wait} 秒后再试")
        response.headers["Retry-After"] = str(wait)
        return response
    if not answer.admitted:
        log.warning("a wrong staff PIN was given on the staff page")
        return _error(401, "unauthorized", "口令不正确")
    response = _json({"ok": True})
    # No Max-Age: the browser forgets it when it closes; a restarted agent asks again anyway.
    response.set_cookie(
        gate.cookie_name, gate.cookie_value, path="/", httponly=True, samesite="Strict"
    )
    return response


async def get_favicon(request: web.Request) -> web.Response:
    """GET /favicon.ico: none, and no error in the browser's console."""
    return web.Response(status=204)


async def get_status(request: web.Request) -> web.Response:
    """GET /status.json: everything the page shows."""
    ui = request.app[UI_KEY]
    desk, link = ui.desk, ui.link
    now = clock.now()
    data = await asyncio.to_thread(snapshot, ui.outbox, desk.book, now)
    current = desk.book.current(now)
    present = await desk.attendees(current) if current is not None else []
    rejected = await asyncio.to_thread(ui.outbox.rejected, 100)
    data.update(
        {
            "agent_version": ui.agent_version,
            "venue": {"code": link.venue_code, "name": link.venue_name}
            if link.venue_code
            else None,
            "online": link.online,
            "problem": link.problem,
            "scan_kind": desk.scan_kind,
            "present": [attendee.as_json() for attendee in present],
            "rejected": [rejected_json(event) for event in rejected],
        }
    )
    if ui.receiver is not None:
        data["stream"] = ui.receiver.status()  # fresher than the journal's newest sample
    return _json(data)


async def get_roster(request: web.Request) -> web.Response:
    """GET /roster?q=…: roster members of the current session matching a name or number (the
    first ROSTER_SHOWN of `total`)."""
    desk = request.app[UI_KEY].desk
    session = desk.book.current(clock.now())
    if session is None:
        return _json({"session_id": None, "total": 0, "members": []})
    found = session.search(request.query.get("q", ""), limit=len(session.roster))
    members = found[:ROSTER_SHOWN]
    return _json(
        {
            "session_id": session.public_id,
            "total": len(found),
            "members": [
                {"member_no": m.member_no, "name": m.name, "card_code": m.card_code}
                for m in members
            ],
        }
    )


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPUnprocessableEntity(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPUnprocessableEntity(text="body must be a JSON object")
    return body


async def post_checkin(request: web.Request) -> web.Response:
    """POST /checkins {session_id, code, kind, field?}: a click on 签到 / 签退."""
    desk = request.app[UI_KEY].desk
    body = await _body(request)
    member_code, kind = body.get("code"), body.get("kind")
    session_public_id, code_field = body.get("session_id"), body.get("field", "member_no")
    if (
        not isinstance(member_code, str)
        or kind not in KINDS
        or not isinstance(session_public_id, str)
        or code_field not in CODE_FIELDS
    ):
        return _json({"queued": False, "known": False, "message": "请求不完整，请刷新页面"}, 422)
    receipt = await desk.check(
        member_code,
        kind=str(kind),
        source="manual",
        session_public_id=session_public_id,
        code_field=str(code_field),
    )
    log.info("manual %s %s: %s", kind, member_code, receipt.message)
    return _json(
        {
            "queued": receipt.queued,
            "known": receipt.known,
            "message": receipt.message,
            "redundant": receipt.redundant,
            "event_id": receipt.event_id,
        }
    )


async def post_scan_kind(request: web.Request) -> web.Response:
    """POST /scan-kind {kind}: whether the scanner checks people in or out."""
    desk = request.app[UI_KEY].desk
    kind = (await _body(request)).get("kind")
    if kind not in KINDS:
        return _error(422, "invalid", "kind 必须是 in 或 out")
    desk.scan_kind = str(kind)
    return _json({"scan_kind": desk.scan_kind})


async def get_screen(request: web.Request) -> web.Response:
    """GET /screen: the room screen, for a full-screen browser."""
    html = screen_page.render_screen(request.app[UI_KEY].csrf_token)
    return _text(html, "text/html")


async def get_screen_css(request: web.Request) -> web.Response:
    """GET /screen.css"""
    return _text(screen_page.CSS, "text/css")


async def get_screen_js(request: web.Request) -> web.Response:
    """GET /screen.js"""
    return _text(screen_page.JS, "text/javascript")


async def get_screen_state(request: web.Request) -> web.Response:
    """GET /screen/state: whether there is a broadcast to show, its state and title."""
    ui = request.app[UI_KEY]
    screen, receiver = ui.screen, ui.receiver
    live = screen is not None and screen.live
    title = None
    if live and screen is not None and screen.session_public_id is not None:
        session = ui.desk.book.get(screen.session_public_id)
        title = session.title if session is not None else None
    state = receiver.status()["state"] if receiver is not None else "idle"
    return _json({"live": live, "state": state, "title": title})


async def get_screen_code(request: web.Request) -> web.Response:
    """GET /screen/code: the self check-in QR code of this rotation (an inline SVG and the
    address it holds) for the session taking check-ins now; {"url": null} when none is."""
    ui = request.app[UI_KEY]
    session = ui.desk.book.current(clock.now())
    venue_code = ui.link.venue_code
    if ui.codes is None or session is None or venue_code is None:
        return _json({"url": None, "svg": None, "expires_in_s": None, "session_id": None})
    shown = ui.codes.code(venue_code, session.public_id)
    svg = segno.make(shown.url, error="m").svg_inline(border=2, omitsize=True)
    return _json(
        {
            "url": shown.url,
            "svg": svg,
            "expires_in_s": round(shown.expires_in_s, 3),
            "session_id": session.public_id,
        }
    )


async def post_screen_offer(request: web.Request) -> web.Response:
    """POST /screen/offer {sdp, type: offer}: the screen's receive-only offer → our answer."""
    screen = request.app[UI_KEY].screen
    body = await _body(request)
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp or body.get("type") != "offer":
        return _json({"error": {"code": "invalid", "message": "需要 SDP offer"}}, 422)
    if screen is None:
        return _json({"error": {"code": "conflict", "message": "本机未接收直播"}}, 409)
    try:
        answer = await screen.answer(sdp)
    except NotLive:
        return _json({"error": {"code": "conflict", "message": "尚未收到直播"}}, 409)
    except (NoCommonCodec, ValueError) as error:
        log.warning("the screen's offer cannot be answered: %s", error)
        return _json({"error": {"code": "invalid", "message": "浏览器不支持直播的编码"}}, 422)
    return _json({"sdp": answer, "type": "answer"})


def create_ui_app(context: UiContext) -> web.Application:
    """The staff page's application."""
    app = web.Application(
        middlewares=[guard_middleware, staff_middleware], client_max_size=64 * 1024
    )
    app[UI_KEY] = context
    add = app.router.add_route
    add("GET", "/", get_page, name="page")
    add("GET", "/app.css", get_css, name="css")
    add("GET", "/app.js", get_js, name="js")
    add("GET", "/favicon.ico", get_favicon, name="favicon")
    add("POST", "/login", post_login, name="login")
    add("GET", "/login.js", get_login_js, name="login_js")
    add("GET", "/status.json", get_status, name="status")
    add("GET", "/roster", get_roster, name="roster")
    add("POST", "/checkins", post_checkin, name="checkin")
    add("POST", "/scan-kind", post_scan_kind, name="scan_kind")
    add("GET", "/screen", get_screen, name="screen")
    add("GET", "/screen.css", get_screen_css, name="screen_css")
    add("GET", "/screen.js", get_screen_js, name="screen_js")
    add("GET", "/screen/state", get_screen_state, name="screen_state")
    add("POST", "/screen/offer", post_screen_offer, name="screen_offer")
    add("GET", "/screen/code", get_screen_code, name="screen_code")
    return app
