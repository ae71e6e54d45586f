"""The typed Janus client (server.rtc.janus, server.rtc.videoroom) against a real Janus 1.1.x
(issue 17): a room made (a second one of the same number refused with Janus's 427), a venue
refused before anyone publishes (428), an aiortc publisher's offer answered through the
VideoRoom and its connection up, then Janus's offer to a venue answered by an aiortc viewer that
decodes the publisher's video; a destroyed session answers Janus's 458."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from passthrough.peer import IceSettings
from server.rtc import videoroom
from server.rtc.janus import JanusError, JanusSession, Jsep
from tests.support.janus import answering_viewer, janus_instance, needs_janus
from tests.support.rtc_peers import close_all, offer_to_publish, until

pytestmark = [needs_janus, pytest.mark.slow]
ROOM = 4242


def _description(jsep: Jsep) -> RTCSessionDescription:
    return RTCSessionDescription(sdp=jsep.sdp, type=jsep.type)


async def test_a_broadcast_through_a_real_janus_room(tmp_path: Path) -> None:
    frames: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    made: list[RTCPeerConnection] = []
    with janus_instance(tmp_path) as janus:
        ice = IceSettings(hosts=(janus.address,))
        async with aiohttp.ClientSession() as http:
            session = await JanusSession.create(http, janus.url)
            try:
                operator = await session.attach(opaque_id="hetang-operator")
                await videoroom.create_room(operator, ROOM)
                assert await videoroom.room_exists(operator, ROOM)
                with pytest.raises(JanusError) as twice:
                    await videoroom.create_room(operator, ROOM)
                assert twice.value.code == 427  # the room exists already
                venue = await session.attach(opaque_id="hetang-venue-b1")
                with pytest.raises(JanusError) as early:
                    await videoroom.subscribe(venue, ROOM, feed=1)
                assert early.value.code == 428  # no such feed (yet)

                publisher = await offer_to_publish(ice)
                made.append(publisher)
                offer = Jsep("offer", publisher.localDescription.sdp)
                published = await videoroom.publish(operator, ROOM, "主会场", offer)
                assert published.answer.type == "answer" and "m=video" in published.answer.sdp
                await publisher.setRemoteDescription(_description(published.answer))
                await operator.wait_for("webrtcup", within_s=20)
                people = await videoroom.participants(operator, ROOM)
                assert [(p["id"], p["display"]) for p in people] == [(published.feed, "主会场")]

                janus_offer = await videoroom.subscribe(venue, ROOM, published.feed)
                assert janus_offer.type == "offer"
                viewer = await answering_viewer(ice, janus_offer.sdp, frames, tasks)
                made.append(viewer)
                await videoroom.start(venue, Jsep("answer", viewer.localDescription.sdp))
                await until(lambda: len(frames) >= 10, "ten decoded frames", within=20)

                await videoroom.destroy_room(operator, ROOM)
                assert not await videoroom.room_exists(operator, ROOM)
            finally:
                for task in tasks:
                    task.cancel()
                await close_all(made)
                await session.destroy()
            with pytest.raises(JanusError) as gone:
                await session.attach()
            assert gone.value.code == 458  # no such session
