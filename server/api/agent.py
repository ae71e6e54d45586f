"""JSON handlers of the agent API (PROTOCOL.md), authenticated by the venue token."""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from server.auth.access import agent
from server.db.session import read_session, write_session
from server.domain.agent_payloads import (
    BadClockOffset,
    BadSentAt,
    BatchRefused,
    MalformedSamples,
    NoSession,
    NotAList,
    TooManyItems,
    parse_checkin_batch,
    parse_heartbeat,
    parse_hello,
    parse_sample_batch,
)
from server.domain.ics import CalendarEvent, calendar
from server.domain.venues import HEARTBEAT_S, STATS_S
from server.errors import ApiError, Invalid, TooLarge
from server.http.body import checked, iso, read_json, reply
from server.keys import AGENT_VENUE_KEY, DB_KEY, METRICS_KEY, RELAY_KEY, SETTINGS_KEY
from server.live.broker import venue_channel
from server.live.notify import wall_changed
from server.live.sockets import serve_channel
from server.services import agents, checkins
from server.services.agents import ScheduledSession
from server.services.clock import utcnow


@agent
async def agent_hello(request: web.Request) -> web.Response:
    """POST /api/v1/agent/hello"""
    hello = checked(parse_hello(await read_json(request)))
    venue = request[AGENT_VENUE_KEY]
    now = utcnow()
    async with write_session(request.app[DB_KEY]) as session:
        await agents.hello(session, venue, hello, now)
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
        "id": item.public_id,
        "title": item.title,
        "topic_code": item.topic_code,
        "starts_at": iso(item.starts_at),
        "ends_at": iso(item.ends_at),
        "state": item.state,
        "role": item.role,
        "roster": [
            {"member_no": member.member_no, "name": member.name, "card_code": member.card_code}
            for member in item.roster
        ],
    }


async def _schedule(request: web.Request) -> list[ScheduledSession]:
    venue = request[AGENT_VENUE_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        return await agents.schedule(session, venue, utcnow())


@agent
async def agent_schedule(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/agent/schedule, with an ETag so an unchanged schedule costs a 304; with the
    time zone (HETANG_TIMEZONE) the venue's staff page shows every time in."""
    sessions = [_schedule_json(item) for item in await _schedule(request)]
    body = json.dumps(
        {"sessions": sessions, "timezone": request.app[SETTINGS_KEY].timezone},
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
            f"{item.public_id}@hetang",
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


@agent
async def agent_heartbeat(request: web.Request) -> web.Response:
    """POST /api/v1/agent/heartbeat"""
    beat = checked(parse_heartbeat(await read_json(request)))
    now = utcnow()
    async with write_session(request.app[DB_KEY]) as session:
        await agents.heartbeat(session, request[AGENT_VENUE_KEY], beat, now)
    request.app[METRICS_KEY].agent_queue_depth.labels(request[AGENT_VENUE_KEY].code).set(
        beat.queue_depth
    )
    if beat.session_public_id:
        await wall_changed(request.app, {beat.session_public_id})
    return reply({"server_time": iso(now), "commands": []})


def _refusal(error: BatchRefused) -> ApiError:
    """The documented error for a batch refused whole."""
    if isinstance(error, NotAList):
        return Invalid(
            "The body needs a list named {name}.",
            name=error.name,
            fields={error.name: "must be a list"},
        )
    if isinstance(error, TooManyItems):
        return TooLarge("A batch holds at most {limit} items.", limit=error.limit)
    if isinstance(error, BadSentAt):
        return Invalid(
            "sent_at must be an ISO 8601 time with an offset.",
            fields={"sent_at": "must be an ISO 8601 time with an offset"},
        )
    if isinstance(error, BadClockOffset):
        return Invalid(
            "clock_offset_ms must be a whole number of milliseconds within a day.",
            fields={"clock_offset_ms": "must be a whole number of milliseconds within a day"},
        )
    if isinstance(error, NoSession):
        return Invalid("session_id is required.", fields={"session_id": "is required"})
    if isinstance(error, MalformedSamples):
        return Invalid(
            "Samples {indexes} are malformed; nothing was stored.",
            indexes=", ".join(str(index) for index in error.indexes[:20]),
            fields={"samples": "has malformed samples"},
        )
    raise TypeError(f"no error shape for {type(error).__name__}")


@agent
async def agent_checkins(request: web.Request) -> web.Response:
    """POST /api/v1/agent/checkins: one answer per event, in order."""
    received_at = utcnow()
    try:
        batch = parse_checkin_batch(await read_json(request), received_at)
    except BatchRefused as error:
        raise _refusal(error) from None
    async with write_session(request.app[DB_KEY]) as session:
        ingested = await checkins.ingest(session, request[AGENT_VENUE_KEY], batch)
    counter = request.app[METRICS_KEY].checkins
    for result in ingested.results:
        counter.labels(result.status).inc()
    await wall_changed(request.app, set(ingested.sessions_touched))
    return reply({"results": [result.as_json() for result in ingested.results]})


@agent
async def agent_stream_stats(request: web.Request) -> web.Response:
    """POST /api/v1/agent/stream-stats"""
    received_at = utcnow()
    try:
        batch = parse_sample_batch(await read_json(request), received_at)
    except BatchRefused as error:
        raise _refusal(error) from None
    venue = request[AGENT_VENUE_KEY]
    async with write_session(request.app[DB_KEY]) as session:
        count = await agents.record_samples(session, venue, batch, received_at)
    metrics = request.app[METRICS_KEY]
    metrics.stream_samples.inc(count)
    if batch.readings:
        metrics.record_stream(venue.code, max(batch.readings, key=lambda r: r.at_corrected))
    if count:
        await wall_changed(request.app, {batch.session_public_id})
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
        {"type": "broadcast_started", "session_id": session_public_id}
        for session_public_id in await request.app[RELAY_KEY].on_air_for(venue.code)
    ]
    return await serve_channel(request, venue_channel(venue.code), greeting)
