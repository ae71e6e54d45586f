"""Self check-in by phone (扫码签到): the phone page's JSON call. Public: what admits it is the
scan pass the page got from a current room-screen code, bound to the phone's cookie."""

from __future__ import annotations

from aiohttp import web

from server.auth.access import public
from server.db.session import write_session
from server.domain.checkin_codes import ScanPass
from server.domain.self_checkin import IdLast4
from server.domain.vocabulary import CHECKIN_KINDS
from server.errors import ApiError, Forbidden, Invalid
from server.http.body import iso, read_json, reply
from server.http.client_address import client_address
from server.keys import DB_KEY, METRICS_KEY, RATE_LIMITS_KEY, SETTINGS_KEY
from server.live.notify import tell_venues, wall_changed
from server.services import self_checkin
from server.services.clock import utcnow

NO_COOKIE = "This browser keeps no cookies. Allow them and scan the code on the room screen again."
FIELD_PROBLEMS = "Fill in the member number and the last four digits of the ID number."


def _text(body: dict[str, object], name: str, longest: int) -> str | None:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        return None
    return value.strip()


@public
async def post_self_checkin(request: web.Request) -> web.Response:
    """POST /api/v1/self-checkins {pass, member_no, id_last4, kind}: check a member in or out."""
    body = await read_json(request)
    cookie = request.cookies.get(self_checkin.PHONE_COOKIE)
    if not cookie:
        raise Forbidden(NO_COOKIE)
    sealed, member_no = _text(body, "pass", 200), _text(body, "member_no", 64)
    proof, kind = _text(body, "id_last4", 8), body.get("kind")
    if sealed is None or member_no is None or proof is None or kind not in CHECKIN_KINDS:
        missing = {
            name: "is required"
            for name, value in (("member_no", member_no), ("id_last4", proof), ("pass", sealed))
            if value is None
        }
        if kind not in CHECKIN_KINDS:
            missing["kind"] = "must be in or out"
        raise Invalid(FIELD_PROBLEMS, fields=missing)
    now = utcnow()
    phone = self_checkin.phone_digest(cookie)
    secret = self_checkin.pass_secret(request.app[SETTINGS_KEY].secret_key)
    scan_pass = ScanPass.open(secret, sealed, phone, now.timestamp())
    if scan_pass is None:
        raise Forbidden(self_checkin.EXPIRED_FORM)
    attempt = self_checkin.Attempt(
        scan_pass, phone, client_address(request), member_no, proof, str(kind)
    )
    async with write_session(request.app[DB_KEY]) as session:
        done = await self_checkin.check_in(
            session, request.app[RATE_LIMITS_KEY], IdLast4(), attempt, now
        )
    if isinstance(done, ApiError):
        raise done
    request.app[METRICS_KEY].checkins.labels("accepted").inc()
    await wall_changed(request.app, {done.session_id})
    event = {
        "type": "checkin_recorded",
        "session_id": done.session_id,
        "event_id": done.event_id,
        "member_no": done.member_no,
        "kind": done.kind,
        "at": iso(done.at),
        "source": "self",
    }
    await tell_venues(request.app, [done.venue_code], event)
    return reply(
        {
            "event_id": done.event_id,
            "session_id": done.session_id,
            "venue": done.venue_code,
            "member_no": done.member_no,
            "name": done.member_name,
            "kind": done.kind,
            "at": iso(done.at),
            "flags": done.review_flags.split(",") if done.review_flags else [],
        },
        status=201,
    )
