"""The live broadcast: the operator publishes and ends it; venue agents subscribe to it."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from passthrough.ports import PortsExhausted
from passthrough.wiring import NoCommonCodec
from server import replays
from server.auth.access import agent, allow
from server.auth.principal import AgentVenue
from server.db.session import read_session, write_session
from server.domain.vocabulary import WRITERS
from server.errors import Conflict, Invalid, OfferFromAgent, OfferFromServer, Unavailable
from server.http.body import read_json, reply
from server.keys import AGENT_VENUE_KEY, DB_KEY, PRINCIPAL_KEY, RELAY_KEY
from server.live.notify import tell_venues, wall_changed
from server.rtc.broadcasts import AlreadyOnAir, NotOnAir
from server.rtc.relay_link import (
    NEGOTIATION_ERRORS,
    AgentOffers,
    EngineUnavailable,
    NoSuchOffer,
    ServerOffers,
)
from server.services import broadcasts, recordings
from server.services.clock import utcnow

log = logging.getLogger(__name__)

MAX_SDP = 64 * 1024


def _parses(sdp: str) -> bool:
    """Whether aiortc can read the text as a session description at all."""
    try:
        SessionDescription.parse(sdp)
    except Exception:
        # The parser reports bad text with assert, KeyError, IndexError, ValueError…: any
        # failure to parse is the text's fault. Parsed once here, it parses again in aiortc.
        return False
    return True


def _offer(body: dict[str, Any]) -> RTCSessionDescription:
    return _description(body, "offer", "The body must be a WebRTC offer.")


def _description(body: dict[str, Any], wanted: str, message: str) -> RTCSessionDescription:
    sdp, kind = body.get("sdp"), body.get("type")
    problems: dict[str, str] = {}
    if not isinstance(sdp, str) or not sdp.strip():
        problems["sdp"] = "is required"
    elif len(sdp) > MAX_SDP or not sdp.startswith("v=0") or "\nm=" not in sdp or not _parses(sdp):
        problems["sdp"] = f"is not an SDP {wanted}"
    if kind != wanted:
        problems["type"] = f'must be "{wanted}"'
    if problems:
        raise Invalid(message, fields=problems)
    return RTCSessionDescription(sdp=str(sdp), type=wanted)


def _no_port() -> Unavailable:
    return Unavailable(
        "The server has no free media port for another connection now; try again in a minute."
    )


def _unusable(error: Exception) -> Invalid:
    log.info("an offer could not be used", exc_info=error)
    return Invalid(
        "The offer could not be used: {problem}",
        problem=str(error) or type(error).__name__,
        fields={"sdp": "could not be negotiated"},
    )


def _engine_down() -> Unavailable:
    return Unavailable("The media server does not answer now; try again in a few seconds.")


def _not_on_air(session_public_id: str) -> Conflict:
    return Conflict("No broadcast is on for session {id}.", id=session_public_id)


def _answer(answer: RTCSessionDescription) -> web.Response:
    return reply({"sdp": answer.sdp, "type": answer.type})


@allow(*WRITERS)  # the operator publishes (PROTOCOL.md)
async def post_broadcast(request: web.Request) -> web.Response:
    """POST /api/v1/sessions/{id}/broadcast: publish (or republish) the session's broadcast."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        target = await broadcasts.broadcast_target(
            session, principal.scope, request.match_info["id"]
        )
    offer = _offer(await read_json(request))
    now = utcnow()
    try:
        published = await request.app[RELAY_KEY].publish(
            target.public_id, target.venue_codes, offer, now
        )
    except PortsExhausted:
        raise _no_port() from None
    except EngineUnavailable:
        raise _engine_down() from None
    except NEGOTIATION_ERRORS as error:
        raise _unusable(error) from None
    async with write_session(request.app[DB_KEY]) as session:
        await broadcasts.record(session, principal.actor, target.public_id, "start", now)
        if published.recording is not None:
            await recordings.opened(
                session, principal.actor, target.public_id, published.recording, now
            )
    message = {"type": "broadcast_started", "session_id": target.public_id}
    await tell_venues(request.app, target.venue_codes, message)
    await wall_changed(request.app, {target.public_id})
    return _answer(published.answer)


@allow(*WRITERS)
async def post_replay(request: web.Request) -> web.Response:
    """POST /api/v1/sessions/{id}/replay: put a make-up session on air from its recording."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        target, file_name = await broadcasts.replay_target(
            session, principal.scope, request.match_info["id"]
        )
    try:
        await replays.go_on_air(
            request.app,
            principal.actor,
            target.public_id,
            target.venue_codes,
            file_name,
            utcnow(),
        )
    except AlreadyOnAir:
        raise Conflict("Session {id} is on air already.", id=target.public_id) from None
    except replays.RecordingMissing:
        raise Conflict(
            "The recording this make-up session plays is no longer on the server."
        ) from None
    return reply({"on": True})


@allow(*WRITERS)
async def delete_broadcast(request: web.Request) -> web.Response:
    """DELETE /api/v1/sessions/{id}/broadcast: take the session off air."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        target = await broadcasts.ending_target(session, principal.scope, request.match_info["id"])
    ended = await request.app[RELAY_KEY].end(target.public_id)
    if ended is not None:
        now = utcnow()
        async with write_session(request.app[DB_KEY]) as session:
            await broadcasts.record(session, principal.actor, target.public_id, "end", now)
            if ended.recording is not None:
                await recordings.closed(
                    session, principal.actor, target.public_id, ended.recording, now
                )
        message = {"type": "broadcast_ended", "session_id": target.public_id}
        await tell_venues(request.app, target.venue_codes, message)
        await wall_changed(request.app, {target.public_id})
    return reply({"on": False})


async def _receiver(
    request: web.Request, *, regions: bool = False
) -> tuple[AgentVenue, str, tuple[str, ...]]:
    """The calling agent's venue and the session it asks about (404 unless it is one of the
    session's receiving venues), and if asked, in the same read, the venue's regions (its
    organization's code and those above it; empty otherwise)."""
    venue = request[AGENT_VENUE_KEY]
    session_public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        await broadcasts.check_receiver(session, venue, session_public_id)
        found = await broadcasts.receiver_regions(session, venue) if regions else ()
    return venue, session_public_id, found


@agent
async def agent_subscribe(request: web.Request) -> web.Response:
    """POST /api/v1/agent/sessions/{id}/subscribe: receive the live broadcast (recvonly)."""
    venue, session_public_id, _ = await _receiver(request)
    offer = _offer(await read_json(request))
    try:
        answer = await request.app[RELAY_KEY].subscribe(session_public_id, venue.code, offer)
    except NotOnAir:
        raise _not_on_air(session_public_id) from None
    except ServerOffers:
        raise OfferFromServer(
            "The media server makes the offer for this broadcast: POST subscribe/offer, then "
            "answer it."
        ) from None
    except NoCommonCodec:
        raise Conflict(
            "This venue cannot receive the codec the main venue sends; update the agent."
        ) from None
    except PortsExhausted:
        raise _no_port() from None
    except NEGOTIATION_ERRORS as error:
        raise _unusable(error) from None
    await wall_changed(request.app, {session_public_id})
    return _answer(answer)


@agent
async def agent_subscribe_offer(request: web.Request) -> web.Response:
    """POST /api/v1/agent/sessions/{id}/subscribe/offer: the media server's offer of the live
    broadcast (Janus), with the token the answer names."""
    venue, session_public_id, regions = await _receiver(request, regions=True)
    try:
        offered = await request.app[RELAY_KEY].offer(session_public_id, venue.code, regions)
    except NotOnAir:
        raise _not_on_air(session_public_id) from None
    except AgentOffers:
        raise OfferFromAgent(
            "This broadcast answers the agent's offer: POST subscribe with an offer."
        ) from None
    except EngineUnavailable:
        raise _engine_down() from None
    return reply({"sdp": offered.offer.sdp, "type": "offer", "token": offered.token})


@agent
async def agent_subscribe_answer(request: web.Request) -> web.Response:
    """POST /api/v1/agent/sessions/{id}/subscribe/answer: the agent's answer to that offer."""
    venue, session_public_id, _ = await _receiver(request)
    body = await read_json(request)
    answer = _description(body, "answer", "The body must be a WebRTC answer to the offer.")
    token = body.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= 100:
        raise Invalid("The body must name the offer it answers.", fields={"token": "is required"})
    try:
        await request.app[RELAY_KEY].answer(session_public_id, venue.code, token, answer)
    except NotOnAir:
        raise _not_on_air(session_public_id) from None
    except NoSuchOffer:
        raise Conflict("That offer is no longer open; ask for a new one.") from None
    except EngineUnavailable:
        raise _engine_down() from None
    except NEGOTIATION_ERRORS as error:
        raise _unusable(error) from None
    await wall_changed(request.app, {session_public_id})
    return reply({"started": True})
