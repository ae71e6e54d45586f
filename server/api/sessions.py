"""JSON handlers for sessions: schedule one, look up, change state, attendance, member records."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.members import hours_number as hours
from server.domain.sessions import parse_session
from server.domain.vocabulary import READERS, REVIEWERS, SESSION_ACTIONS, WRITERS
from server.http.body import checked, iso, query_year, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY, RELAY_KEY, SETTINGS_KEY
from server.live.notify import schedule_changed
from server.services import session_views, sessions, walk_ins, workflow
from server.services.attendance_view import (
    SessionAttendance,
    member_record,
    session_attendance,
)
from server.services.clock import utcnow
from server.services.session_views import SessionView
from server.services.wall import StreamHealth, arrange, readiness, venue_wall


def session_json(view: SessionView) -> dict[str, Any]:
    """A session in the API's words."""
    return {
        "id": view.id,
        "title": view.title,
        "topic_code": view.topic_code,
        "starts_at": iso(view.starts_at),
        "ends_at": iso(view.ends_at),
        "credit_hours": hours(view.credit_hours),
        "state": view.state,
        "policy": view.policy,
        "org_code": view.org_code,
        "main_venue": view.main_venue,
        "branch_venues": [v.code for v in view.venues if v.role == "branch"],
        "roster_size": view.roster_size,
        "plan_class": str(view.plan_class) if view.plan_class else None,
        "replay_of": view.replay_of,
    }


def attendance_json(result: SessionAttendance) -> dict[str, Any]:
    """PROTOCOL.md's shape of GET sessions/{id}/attendance."""
    return {
        "session": {
            "id": result.id,
            "state": result.state,
            "starts_at": iso(result.starts_at),
            "ends_at": iso(result.ends_at),
        },
        "summary": result.summary,
        "venues": [
            {
                "code": v.code,
                "role": v.role,
                "expected": v.expected,
                "checked_in": v.checked_in,
                "up_seconds": v.up_seconds,
            }
            for v in result.venues
        ],
        "members": [
            {
                "member_no": m.member_no,
                "name": m.name,
                "assigned_venue": m.assigned_venue,
                "venues": m.venues,
                "status": m.status,
                "reason": m.reason,
                "presence_seconds": m.presence_seconds,
                "verified_seconds": m.verified_seconds,
                "credit_hours": hours(m.credit_hours),
                "flags": m.flags,
            }
            for m in result.members
        ],
    }


@allow(*WRITERS)
async def create_session(request: web.Request) -> web.Response:
    """POST /api/v1/sessions"""
    fields = checked(parse_session(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await sessions.create_session(
            session, principal.scope, principal.actor, fields, principal.user_id
        )
    await schedule_changed(request.app, view)
    return reply(session_json(view), status=201)


@allow(*WRITERS)
async def update_session(request: web.Request) -> web.Response:
    """PUT /api/v1/sessions/{id}: replace a session that has not started (same body as POST)."""
    fields = checked(parse_session(await read_json(request)))
    principal = request[PRINCIPAL_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        view = await sessions.update_session(
            session, principal.scope, principal.actor, request.match_info["id"], fields
        )
    await schedule_changed(request.app, view)
    return reply(session_json(view))


@allow(*READERS)
async def list_sessions(request: web.Request) -> web.Response:
    """GET /api/v1/sessions: latest first."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await session_views.list_sessions(session, principal.scope)
    return reply({"sessions": [session_json(view) for view in views]})


@allow(*READERS)
async def get_session(request: web.Request) -> web.Response:
    """GET /api/v1/sessions/{id}"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await session_views.get_session(session, principal.scope, request.match_info["id"])
    return reply(session_json(view))


def _action_handler(action: str) -> Any:
    @allow(*SESSION_ACTIONS[action])
    async def handler(request: web.Request) -> web.Response:
        principal = request[PRINCIPAL_KEY]
        async with write_session(request.app[DB_KEY]) as session:
            view = await workflow.act(
                session,
                principal.scope,
                principal.actor,
                request.match_info["id"],
                action,
                request.app[SETTINGS_KEY].tz,
            )
        await schedule_changed(request.app, view)
        return reply(session_json(view))

    handler.__name__ = handler.__qualname__ = f"{action}_session"
    handler.__doc__ = f"POST /api/v1/sessions/{{id}}/{action}"
    return handler


start_session = _action_handler("start")
end_session = _action_handler("end")
finalize_session = _action_handler("finalize")
approve_session = _action_handler("approve")
reopen_session = _action_handler("reopen")


@allow(*READERS)
async def get_attendance(request: web.Request) -> web.Response:
    """GET /api/v1/sessions/{id}/attendance"""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        result = await session_attendance(session, principal.scope, request.match_info["id"])
    return reply(attendance_json(result))


@allow(*REVIEWERS)
async def accept_walk_in(request: web.Request) -> web.Response:
    """POST /api/v1/sessions/{id}/attendance/{member_no}/accept: credit a walk-in from outside
    the session's organizations (`outside_scope`); answers the recomputed attendance."""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with write_session(request.app[DB_KEY]) as session:
        await walk_ins.accept_walk_in(
            session,
            principal.scope,
            principal.actor,
            public_id,
            request.match_info["member_no"],
            request.app[SETTINGS_KEY].tz,
        )
        result = await session_attendance(session, principal.scope, public_id)
    return reply(attendance_json(result))


@allow(*READERS)
async def get_member_record(request: web.Request) -> web.Response:
    """GET /api/v1/members/{member_no}/record?year=YYYY"""
    principal = request[PRINCIPAL_KEY]
    tz = request.app[SETTINGS_KEY].tz
    year = query_year(request)
    async with read_session(request.app[DB_KEY]) as session:
        record = await member_record(
            session, principal.scope, request.match_info["member_no"], year, tz
        )
    return reply(
        {
            "member_no": record.member_no,
            "name": record.name,
            "year": record.year,
            "required_hours": hours(record.required_hours),
            "earned_hours": hours(record.earned_hours),
            "entries": [
                {
                    "session_id": e.session_id,
                    "title": e.title,
                    "topic_code": e.topic_code,
                    "starts_at": iso(e.starts_at),
                    "credit_hours": hours(e.credit_hours),
                    "status": e.status,
                    "venue": e.venue,
                    "makeup_of": None
                    if e.makeup_of_id is None
                    else {"session_id": e.makeup_of_id, "title": e.makeup_of},
                }
                for e in record.entries
            ],
        }
    )


def _stream_json(stream: StreamHealth | None) -> dict[str, object] | None:
    if stream is None:
        return None
    return {
        "state": stream.state,
        "stale": stream.stale,
        "bitrate_kbps": stream.bitrate_kbps,
        "fps": stream.fps,
        "loss_pct": stream.loss_pct,
        "freezes": stream.freezes,
        "at": iso(stream.at),
    }


@allow(*READERS)
async def get_wall(request: web.Request) -> web.Response:
    """GET /api/v1/sessions/{id}/wall: every venue's agent, head count and stream, and the
    broadcast, right now."""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        state, tiles = await venue_wall(session, principal.scope, public_id, utcnow())
    broadcast = await request.app[RELAY_KEY].status(public_id)
    shown = arrange(tiles, broadcast.on, broadcast.publishing)
    ready = readiness(shown, broadcast.on)
    return reply(
        {
            "state": state,
            "broadcast": {
                "on": broadcast.on,
                "publishing": broadcast.publishing,
                "subscribers": broadcast.subscribers,
                "since": iso(broadcast.since),
                "recording": {
                    "state": broadcast.recording,
                    "problem": broadcast.recording_problem,
                },
            },
            "readiness": {
                "branches": ready.branches,
                "online": ready.online,
                "offline": list(ready.offline),
                "receiving_well": ready.receiving_well,
                "ready": ready.ready,
            },
            "venues": [
                {
                    "code": t.code,
                    "name": t.name,
                    "role": t.role,
                    "condition": item.condition,
                    "problem": item.problem,
                    "online": t.online,
                    "last_seen_at": iso(t.last_seen_at),
                    "agent_state": t.agent_state,
                    "queue_depth": t.queue_depth,
                    "ice_path": t.ice_path,
                    "checked_in": t.checked_in,
                    "expected": t.expected,
                    "stream": _stream_json(t.stream),
                    "stream_quality": broadcast.quality.get(t.code),
                }
                for item in shown
                for t in (item.tile,)
            ],
        }
    )
