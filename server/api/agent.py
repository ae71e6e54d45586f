"""JSON handlers of the agent API (PROTOCOL.md), authenticated by the venue token."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta

from aiohttp import web

from server.auth.access import agent
from server.db.session import read_session, write_session
from server.domain import validation as v
from server.domain.checkins import MAX_BATCH, MAX_COUNTER, clock_offset, corrected
from server.domain.ics import CalendarEvent, calendar
from server.domain.times import parse_instant
from server.domain.venues import HEARTBEAT_S, STATS_S
from server.errors import Invalid, TooLarge
from server.http.body import checked, iso, read_json, reply
from server.keys import AGENT_VENUE_KEY, BROADCASTS_KEY, DB_KEY, METRICS_KEY
from server.live.broker import venue_channel
from server.live.notify import wall_changed
from server.live.sockets import serve_channel
from server.services import agents, checkins
from server.services.agents import Heartbeat, ScheduledSession, StreamReading
from server.services.clock import utcnow

AGENT_STATES = ("idle", "receiving", "degraded")
STREAM_STATES = ("good", "degraded", "down")
MAX_SAMPLES = 2000


def _parse_hello(raw: dict[str, object]) -> tuple[tuple[str, str] | None, v.Problems]:
    problems = v.Problems()
    version = v.text(raw, "agent_version", problems, max_len=64)
    hostname = v.text(raw, "hostname", problems, max_len=255)
    if version is None or hostname is None:
        return None, problems
    return (version, hostname), problems


@agent
async def agent_hello(request: web.Request) -> web.Response:
    """POST /api/v1/agent/hello"""
    version, hostname = checked(_parse_hello(await read_json(request)))
    venue = request[AGENT_VENUE_KEY]
    now = utcnow()
    async with write_session(request.app[DB_KEY]) as session:
        await agents.hello(session, venue, agent_version=version, hostname=hostname, now=now)
    return reply(
        {
            "venue": {"code": venue.code, "name": venue.name},
            "server_time": iso(now),
            "heartbeat_s": HEARTBEAT_S,
            "stats_s": STATS_S,
        }
    )


def _schedule_json(item: ScheduledSession) -> dict[str, object]:
    return {
        "id": item.id,
        "title": item.title,
        "topic_code": item.topic_code,
        "starts_at": iso(item.starts_at),
        "ends_at": iso(item.ends_at),
        "state": item.state,
        "role": item.role,
        "roster": [
            {"member_no": number, "name": name, "card_code": card}
            for number, name, card in item.roster
        ],
    }


async def _schedule(request: web.Request) -> list[ScheduledSession]:
    venue = request[AGENT_VENUE_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        return await agents.schedule(session, venue, utcnow())


@agent
async def agent_schedule(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/agent/schedule, with an ETag so an unchanged schedule costs a 304."""
    body = json.dumps(
        {"sessions": [_schedule_json(item) for item in await _schedule(request)]},
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers={"ETag": etag, "Cache-Control": "no-cache"},
    )


@agent
async def agent_schedule_ics(request: web.Request) -> web.Response:
    """GET /api/v1/agent/schedule.ics"""
    venue = request[AGENT_VENUE_KEY]
    events = [
        CalendarEvent(
            f"{item.id}@hetang",
            item.title,
            item.starts_at,
            item.ends_at,
            f"{item.topic_code} · {item.role} · {len(item.roster)}",
            "CONFIRMED",
        )
        for item in await _schedule(request)
    ]
    text = calendar(venue.name, events, utcnow())
    return web.Response(text=text, content_type="text/calendar", charset="utf-8")


def _parse_heartbeat(raw: dict[str, object]) -> tuple[Heartbeat | None, v.Problems]:
    problems = v.Problems()
    state = v.choice(raw, "state", AGENT_STATES, problems)
    version = v.text(raw, "agent_version", problems, max_len=64)
    session_id = raw.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 32):
        problems["session_id"] = "must be a session id or null"
    depth = raw.get("queue_depth")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_COUNTER:
        problems["queue_depth"] = "must be a whole number of at least 0"
    if problems or state is None or version is None or not isinstance(depth, int):
        return None, problems
    return Heartbeat(
        state, session_id if isinstance(session_id, str) else None, depth, version
    ), problems


@agent
async def agent_heartbeat(request: web.Request) -> web.Response:
    """POST /api/v1/agent/heartbeat"""
    beat = checked(_parse_heartbeat(await read_json(request)))
    now = utcnow()
    async with write_session(request.app[DB_KEY]) as session:
        await agents.heartbeat(session, request[AGENT_VENUE_KEY], beat, now)
    request.app[METRICS_KEY].agent_queue_depth.labels(request[AGENT_VENUE_KEY].code).set(
        beat.queue_depth
    )
    if beat.session_id:
        await wall_changed(request.app, {beat.session_id})
    return reply({"server_time": iso(now), "commands": []})


def _batch(body: dict[str, object], name: str, limit: int) -> tuple[list[object], datetime]:
    items = body.get(name)
    if not isinstance(items, list):
        raise Invalid(
            "The body needs a list named {name}.", name=name, fields={name: "must be a list"}
        )
    if len(items) > limit:
        raise TooLarge("A batch holds at most {limit} items.", limit=limit)
    sent_at = parse_instant(body.get("sent_at"))
    if sent_at is None:
        raise Invalid(
            "sent_at must be an ISO 8601 time with an offset.",
            fields={"sent_at": "must be an ISO 8601 time with an offset"},
        )
    return items, sent_at


@agent
async def agent_checkins(request: web.Request) -> web.Response:
    """POST /api/v1/agent/checkins: one answer per event, in order."""
    received_at = utcnow()
    events, sent_at = _batch(await read_json(request), "events", MAX_BATCH)
    async with write_session(request.app[DB_KEY]) as session:
        outcomes = await checkins.ingest(
            session, request[AGENT_VENUE_KEY], sent_at, received_at, events
        )
    counter = request.app[METRICS_KEY].checkins
    for outcome in outcomes:
        counter.labels(outcome.status).inc()
    touched = {
        str(raw.get("session_id"))
        for raw, outcome in zip(events, outcomes, strict=True)
        if outcome.status == "accepted" and isinstance(raw, dict)
    }
    await wall_changed(request.app, touched)
    return reply({"results": [outcome.as_json() for outcome in outcomes]})


def _reading(raw: object, offset: timedelta) -> StreamReading | None:
    if not isinstance(raw, dict):
        return None
    at = parse_instant(raw.get("at"))
    state = raw.get("state")
    if at is None or state not in STREAM_STATES:
        return None
    numbers = {}
    for name in ("bitrate_kbps", "fps", "loss_pct", "jitter_ms", "freezes", "frames_decoded"):
        value = raw.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            return None
        numbers[name] = value
    freezes, frames = numbers["freezes"], numbers["frames_decoded"]
    if any(
        value is not None and (not float(value).is_integer() or value > MAX_COUNTER)
        for value in (freezes, frames)
    ):
        return None
    moment = corrected(at, offset)
    if moment is None:
        return None
    return StreamReading(
        moment,
        str(state),
        _float(numbers["bitrate_kbps"]),
        _float(numbers["fps"]),
        _float(numbers["loss_pct"]),
        _float(numbers["jitter_ms"]),
        None if freezes is None else int(freezes),
        None if frames is None else int(frames),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@agent
async def agent_stream_stats(request: web.Request) -> web.Response:
    """POST /api/v1/agent/stream-stats"""
    received_at = utcnow()
    body = await read_json(request)
    samples, sent_at = _batch(body, "samples", MAX_SAMPLES)
    session_id = body.get("session_id")
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 32:
        raise Invalid("session_id is required.", fields={"session_id": "is required"})
    offset = clock_offset(sent_at, received_at)
    readings = [_reading(raw, offset) for raw in samples]
    bad = [index for index, reading in enumerate(readings) if reading is None]
    if bad:
        raise Invalid(
            "Samples {indexes} are malformed; nothing was stored.",
            indexes=", ".join(str(index) for index in bad[:20]),
            fields={"samples": "has malformed samples"},
        )
    valid = [r for r in readings if r is not None]
    async with write_session(request.app[DB_KEY]) as session:
        count = await agents.record_samples(
            session, request[AGENT_VENUE_KEY], session_id, valid, received_at
        )
    metrics = request.app[METRICS_KEY]
    metrics.stream_samples.inc(count)
    if valid:
        metrics.record_stream(request[AGENT_VENUE_KEY].code, max(valid, key=lambda r: r.at))
    if count:
        await wall_changed(request.app, {session_id})
    return reply({"accepted": count})


@agent
async def agent_events(request: web.Request) -> web.WebSocketResponse:
    """GET /api/v1/agent/events (WebSocket): broadcast_started, broadcast_ended and
    schedule_changed for this venue, as they happen."""
    venue = request[AGENT_VENUE_KEY]
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise Invalid("This address is a WebSocket: connect with Upgrade: websocket.")
    # An agent that (re)connects while a broadcast is on joins it at once.
    greeting = [
        {"type": "broadcast_started", "session_id": public_id}
        for public_id in request.app[BROADCASTS_KEY].on_air_for(venue.code)
    ]
    return await serve_channel(request, venue_channel(venue.code), greeting)
