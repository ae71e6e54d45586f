"""The agent API with Janus as the media engine (HETANG_MEDIA=janus; a real origin and edge):
an agent's own offer is refused with 409 `offer_from_server`; the server's offer is answered by a
venue that then decodes the lesson through the edge; a wrong venue, a stale token or a bad answer
is refused without starting anything; ending the broadcast removes its rooms from both Janus,
and the broadcast's recording holds its picture.
With the built-in relay the server's offer is refused with 409 `offer_from_agent`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc import RTCPeerConnection

from passthrough.peer import IceSettings
from server.app import create_app
from server.domain.media import MediaSettings
from server.rtc.janus import JanusSession
from server.settings import Settings
from tests.support.broadcast_api import add_session, add_venue, audit_count, publish
from tests.support.janus import (
    JanusVenue,
    RunningJanus,
    answering_viewer,
    janus_address,
    janus_instance,
    needs_janus,
)
from tests.support.rtc_peers import close_all, offer_to_view, until
from tests.support.world import World

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow]


@pytest.fixture
def janus_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningJanus, ...]]:
    root = tmp_path_factory.mktemp("janus")
    with (
        janus_address() as address,
        janus_instance(root, "origin", address, rtp_low=44000) as origin,
        janus_instance(root, "edge-1", address, rtp_low=45000) as edge,
    ):
        yield origin, edge


@pytest.fixture
def janus_settings(settings: Settings, janus_pair: tuple[RunningJanus, ...]) -> Settings:
    urls = tuple(janus.url for janus in janus_pair)
    return dataclasses.replace(settings, media=MediaSettings("janus", urls))


@pytest.fixture
async def tree_client(aiohttp_client: Any, janus_settings: Settings, db: Any) -> AsyncIterator[Any]:
    yield await aiohttp_client(create_app(janus_settings))


def _decoded_pictures(webm: bytes) -> int:
    with av.open(io.BytesIO(webm), "r") as container:
        return len(list(container.decode(video=0)))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _rooms(url: str) -> list[int]:
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.create(http, url)
        try:
            handle = await session.attach()
            rooms = await handle.request({"request": "list"})
            return [int(room["room"]) for room in rooms.get("list", [])]
        finally:
            await session.destroy()


@needs_janus
async def test_venues_answer_the_offer_of_a_janus_edge(
    tree_client: Any, world: World, db: Any, janus_pair: tuple[RunningJanus, ...]
) -> None:
    client = tree_client
    origin, edge = janus_pair
    ice = IceSettings(hosts=(origin.address,))
    await add_venue(client, world, "MAIN")
    b1 = await add_venue(client, world, "B1")
    b2 = await add_venue(client, world, "B2")
    session_id = await add_session(client, world, "MAIN", ["B1", "B2"])
    base = f"/api/v1/agent/sessions/{session_id}/subscribe"
    made: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task[None]] = []
    frames: list[float] = []
    try:
        early = await client.post(base + "/offer", headers=_bearer(b1))
        assert early.status == 409 and (await early.json())["error"]["code"] == "conflict"

        made.append(await publish(client, world, session_id, ice))
        assert await audit_count(db, "session.broadcast_start") == 1

        # The agent's own offer: the server says who offers here.
        viewer = await offer_to_view()
        made.append(viewer.pc)
        own = await client.post(
            base,
            headers=_bearer(b1),
            json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
        )
        assert own.status == 409
        assert (await own.json())["error"]["code"] == "offer_from_server"

        offered = await client.post(base + "/offer", headers=_bearer(b1))
        assert offered.status == 200, await offered.text()
        body = await offered.json()
        assert body["type"] == "offer" and "m=video" in body["sdp"] and body["token"]
        pc = await answering_viewer(ice, body["sdp"], frames, tasks)
        made.append(pc)
        answer_body = {"sdp": pc.localDescription.sdp, "type": "answer", "token": body["token"]}

        # Refusals start nothing: another venue's token, a bad answer, an unknown token.
        for headers, sent, status in (
            (_bearer(b2), answer_body, 409),
            (_bearer(b1), {**answer_body, "type": "offer"}, 422),
            (_bearer(b1), {**answer_body, "sdp": "v=0"}, 422),
            (_bearer(b1), {**answer_body, "token": ""}, 422),
            (_bearer(b1), {**answer_body, "token": "not-an-offer"}, 409),
        ):
            refused = await client.post(base + "/answer", headers=headers, json=sent)
            assert refused.status == status, (sent, await refused.text())
        wall = await client.get(
            f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
        )
        assert (await wall.json())["broadcast"]["subscribers"] == 0

        started = await client.post(base + "/answer", headers=_bearer(b1), json=answer_body)
        assert started.status == 200, await started.text()
        assert await started.json() == {"started": True}
        await until(lambda: len(frames) >= 10, "ten frames decoded through the edge", within=20)
        wall = await client.get(
            f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
        )
        assert (await wall.json())["broadcast"]["subscribers"] == 1
        # The token was used: answering again is refused.
        again = await client.post(base + "/answer", headers=_bearer(b1), json=answer_body)
        assert again.status == 409

        await asyncio.sleep(3)  # a few seconds of lesson for the recording
        # The edge carries the room (the venue's feed came from there); ending removes it.
        rooms = await _rooms(edge.url)
        assert len(rooms) == 1 and rooms == await _rooms(origin.url)
        ended = await client.delete(
            f"/api/v1/sessions/{session_id}/broadcast", headers=world.auth("operator", "a")
        )
        assert ended.status == 200
        assert await _rooms(origin.url) == [] and await _rooms(edge.url) == []
        assert await audit_count(db, "session.broadcast_end") == 1
        # Recorded as the built-in relay records: the WebM holds the lesson's picture.
        listed = await client.get(
            f"/api/v1/sessions/{session_id}/recordings", headers=world.auth("operator", "a")
        )
        (recording,) = (await listed.json())["recordings"]
        assert recording["duration_s"] > 1 and recording["bytes"] > 0, recording
        assert recording["problem"] is None
        webm = await client.get(recording["url"], headers=world.auth("operator", "a"))
        assert webm.status == 200
        pictures = _decoded_pictures(await webm.read())
        assert pictures >= 10, pictures
        assert await audit_count(db, "session.recording_start") == 1
    finally:
        for task in tasks:
            task.cancel()
        await close_all(made)


@needs_janus
async def test_a_venue_asking_while_the_page_is_away_gets_the_republished_lesson(
    tree_client: Any, world: World, janus_pair: tuple[RunningJanus, ...]
) -> None:
    """The operator's page drops (its connection hangs up in Janus); a venue asking for an offer
    meanwhile waits, and gets the lesson the page publishes again."""
    client = tree_client
    ice = IceSettings(hosts=(janus_pair[0].address,))
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    venue = JanusVenue(client, session_id, branch, ice)
    made: list[RTCPeerConnection] = []
    try:
        first = await publish(client, world, session_id, ice)
        await asyncio.sleep(1)
        await first.close()  # the page is gone
        await asyncio.sleep(2)
        asking = asyncio.ensure_future(venue.ask())
        await asyncio.sleep(1)
        assert not asking.done(), "the venue waits for the page to come back"
        made.append(await publish(client, world, session_id, ice))
        offered = await asyncio.wait_for(asking, 20)
        assert offered.status == 200, await offered.text()
        await venue.answer(await offered.json())
        await until(
            lambda: len(venue.frames) >= 10, "the republished lesson at the venue", within=20
        )
    finally:
        await venue.close()
        await close_all(made)


@needs_janus
async def test_two_classes_at_once_each_in_its_own_room(
    tree_client: Any, world: World, janus_pair: tuple[RunningJanus, ...]
) -> None:
    """Two sessions on air at once: each venue decodes its own lesson; ending one leaves the
    other playing."""
    client = tree_client
    origin, _ = janus_pair
    ice = IceSettings(hosts=(origin.address,))
    await add_venue(client, world, "M1")
    await add_venue(client, world, "M2")
    tokens = {
        "B1": await add_venue(client, world, "B1"),
        "B2": await add_venue(client, world, "B2"),
    }
    sessions = {
        "B1": await add_session(client, world, "M1", ["B1"]),
        "B2": await add_session(client, world, "M2", ["B2"]),
    }
    venues = {code: JanusVenue(client, sessions[code], tokens[code], ice) for code in sessions}
    made: list[RTCPeerConnection] = []
    try:
        for session_id in sessions.values():
            made.append(await publish(client, world, session_id, ice))
        assert len(await _rooms(origin.url)) == 2
        for venue in venues.values():
            await venue.subscribe()
        await until(
            lambda: all(len(v.frames) >= 10 for v in venues.values()), "both lessons decoded"
        )
        ended = await client.delete(
            f"/api/v1/sessions/{sessions['B1']}/broadcast", headers=world.auth("operator", "a")
        )
        assert ended.status == 200
        assert len(await _rooms(origin.url)) == 1
        count = len(venues["B2"].frames)
        await until(lambda: len(venues["B2"].frames) >= count + 10, "the other lesson playing on")
    finally:
        for venue in venues.values():
            await venue.close()
        await close_all(made)


@pytest.fixture
def janus_trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningJanus, ...]]:
    root = tmp_path_factory.mktemp("janus")
    with (
        janus_address() as address,
        janus_instance(root, "origin", address, rtp_low=44000) as origin,
        janus_instance(root, "edge-1", address, rtp_low=45000) as edge_1,
        janus_instance(root, "edge-2", address, rtp_low=46000) as edge_2,
    ):
        yield origin, edge_1, edge_2


@needs_janus
async def test_an_edge_serves_its_region_first(
    aiohttp_client: Any,
    settings: Settings,
    db: Any,
    world: World,
    janus_trio: tuple[RunningJanus, ...],
) -> None:
    """edge-1 is set to serve A1a's subtree (`#a1a`): A1a's venues go there whatever its load;
    a venue elsewhere goes to the edge with the fewest venues (the first, on a tie)."""
    origin, edge_1, edge_2 = janus_trio
    urls = (origin.url, f"{edge_1.url}#a1a", edge_2.url)
    media = Settings.from_env(
        {
            "HETANG_SECRET_KEY": "k" * 40,
            "HETANG_MEDIA": "janus",
            "HETANG_JANUS_URLS": ",".join(urls),
        }
    ).media
    client = await aiohttp_client(create_app(dataclasses.replace(settings, media=media)))
    ice = IceSettings(hosts=(origin.address,))
    await add_venue(client, world, "MAIN")
    tokens = {
        "V2": await add_venue(client, world, "V2", "a1"),
        "V1": await add_venue(client, world, "V1", "a1a"),
        "V3": await add_venue(client, world, "V3", "a1a"),
    }
    session_id = await add_session(client, world, "MAIN", list(tokens))
    made = [await publish(client, world, session_id, ice)]
    try:
        edges = {}
        for code, token in tokens.items():
            offered = await client.post(
                f"/api/v1/agent/sessions/{session_id}/subscribe/offer", headers=_bearer(token)
            )
            assert offered.status == 200, await offered.text()
            ports = re.findall(
                r"a=candidate:\S+ 1 udp \d+ \S+ (\d+) typ host", (await offered.json())["sdp"]
            )
            edges[code] = {int(port) // 1000 - 44 for port in ports}
        # RTP ports 45xxx are edge-1's, 46xxx edge-2's. V2 (outside A1a) came first to two
        # empty edges; V1 and V3 then went to edge-1 although edge-2 had fewer venues.
        assert edges == {"V2": {1}, "V1": {1}, "V3": {1}}, edges
    finally:
        await close_all(made)


async def test_with_the_builtin_relay_the_agent_offers(
    client: Any, world: World, tmp_path: Path
) -> None:
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    base = f"/api/v1/agent/sessions/{session_id}/subscribe"
    publisher = await publish(client, world, session_id)
    try:
        offered = await client.post(base + "/offer", headers=_bearer(branch))
        assert offered.status == 409
        assert (await offered.json())["error"]["code"] == "offer_from_agent"
        answered = await client.post(
            base + "/answer",
            headers=_bearer(branch),
            json={
                "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
                "type": "answer",
                "token": "x",
            },
        )
        assert answered.status == 409, await answered.text()
    finally:
        await close_all([publisher])
