"""The picture each venue gets from Janus, by the built-in relay's rule: a publisher sending the
full and the lighter picture into a real Janus, a venue receiving the full one over a link that
loses a third of its packets (nftables `numgen random` on the packets Janus sends it). Janus's
event handler reports the losses the venue's receiver reports; the server moves the venue to the
lighter picture (told `broadcast_moved`), and its new subscription carries that one alone
(decoded at the lighter picture's size)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from passthrough.peer import IceSettings
from tests.support.broadcast_api import add_session, add_venue, publish
from tests.support.janus import JanusVenue, RunningJanus, needs_janus
from tests.support.netlab import ip_run
from tests.support.rtc_peers import close_all, offer_two_layers, until
from tests.support.world import World

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow, needs_janus]
LOSS_PCT = 35


@contextlib.contextmanager
def lossy_towards(address: str, port: int) -> Iterator[None]:
    """Drop LOSS_PCT % of the UDP packets sent to address:port (Janus's media to one venue)."""
    table = f"hjq{secrets.token_hex(3)}"
    rules = (
        f"add table inet {table}\n"
        f"add chain inet {table} out {{ type filter hook output priority 0 ; }}\n"
        f"add rule inet {table} out ip daddr {address} udp dport {port} "
        f"numgen random mod 100 < {LOSS_PCT} drop\n"
    )
    ip_run("nft", "-f", "-", stdin=rules)
    try:
        yield
    finally:
        ip_run("nft", "delete", "table", "inet", table, check=False)


def _video_mids(sdp: str) -> list[str]:
    mids, kind = [], ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split()[0]
        elif line.startswith("a=mid:") and kind == "video":
            mids.append(line.removeprefix("a=mid:"))
    return mids


async def test_a_lossy_venue_gets_the_lighter_picture(
    janus_client: Any, world: World, reporting_origin: RunningJanus
) -> None:
    client = janus_client
    ice = IceSettings(hosts=(reporting_origin.address,))
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    operator = world.auth("operator", "a")
    venue = JanusVenue(client, session_id, branch, ice)
    frames, sizes = venue.frames, venue.sizes
    made: list[RTCPeerConnection] = []

    async def subscribe() -> list[str]:
        return _video_mids((await venue.subscribe())["sdp"])

    async def quality() -> Any:
        wall = await (
            await client.get(f"/api/v1/sessions/{session_id}/wall", headers=operator)
        ).json()
        return {tile["code"]: tile["stream_quality"] for tile in wall["venues"]}.get("B1")

    try:
        publisher = await offer_two_layers(ice)
        made.append(await publish(client, world, session_id, ice, publisher))
        events_of = {"Authorization": f"Bearer {branch}"}
        async with client.ws_connect("/api/v1/agent/events", headers=events_of) as events:
            assert (await asyncio.wait_for(events.receive_json(), 5))["type"] == "broadcast_started"
            full = await subscribe()
            assert len(full) == 1, "one picture, never both"
            await until(lambda: len(frames) >= 10, "the full picture at the venue")
            assert set(sizes) == {(320, 240)}
            assert await quality() == "high"
            viewer_port = int(
                re.findall(
                    rf"a=candidate:\S+ 1 udp \d+ {re.escape(ice.hosts[0])} (\d+) typ host",
                    venue.peers[-1].localDescription.sdp,
                )[0]
            )
            with lossy_towards(reporting_origin.address, viewer_port):
                moved = await asyncio.wait_for(events.receive_json(), 30)
            assert moved == {"type": "broadcast_moved", "session_id": session_id}
            lighter = await subscribe()
            assert len(lighter) == 1
            count = len(frames)
            await until(lambda: len(frames) >= count + 10, "the lighter picture at the venue")
            assert set(sizes[count + 5 :]) == {(160, 120)}
            assert await quality() == "low"
    finally:
        await venue.close()
        await close_all(made)
