"""Janus's event handler into our metrics: a real Janus (origin, no edges) posts its events to
the server's /janus/events with the metrics token as the basic-auth password; once the
operator publishes and a venue receives, /metrics shows Janus's events by type, the venue's sent
bitrate and the publisher's received bitrate. A post with the wrong token from elsewhere is
refused and counts nothing, the right one is taken from anywhere; a body that is not events is
refused with 422."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from passthrough.peer import IceSettings
from tests.janus.conftest import EVENTS_TOKEN
from tests.support.broadcast_api import add_session, add_venue, publish
from tests.support.janus import JanusVenue, RunningJanus, needs_janus
from tests.support.rtc_peers import close_all, until
from tests.support.world import World

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow, needs_janus]


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{name}{{{re.escape(wanted)}}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_janus_events_reach_the_metrics(
    janus_client: Any, world: World, reporting_origin: RunningJanus
) -> None:
    client = janus_client
    ice = IceSettings(hosts=(reporting_origin.address,))
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    session_id = await add_session(client, world, "MAIN", ["B1"])
    bearer = {"Authorization": f"Bearer {EVENTS_TOKEN}"}

    # Refused: the wrong password from elsewhere, and a body that is not events.
    wrong = base64.b64encode(b"janus:not-the-token").decode()
    elsewhere = {"Authorization": f"Basic {wrong}", "Host": "hetang.example.cn"}
    event = {"emitter": "spoof", "type": 1, "event": {"name": "created"}}
    refused = await client.post("/janus/events", headers=elsewhere, json=[event])
    assert refused.status == 403
    bad = await client.post("/janus/events", headers=bearer, json="events")
    assert bad.status == 422
    metrics = await (await client.get("/metrics", headers=bearer)).text()
    assert _metric(metrics, "hetang_janus_events_total", emitter="spoof", type="session") == 0
    # The right token as the basic-auth password (as Janus sends it) is admitted from anywhere.
    right = base64.b64encode(f"janus:{EVENTS_TOKEN}".encode()).decode()
    remote = {"Authorization": f"Basic {right}", "Host": "hetang.example.cn"}
    taken = await client.post("/janus/events", headers=remote, json=[event, event])
    assert taken.status == 200 and await taken.json() == {"events": 2}
    metrics = await (await client.get("/metrics", headers=bearer)).text()
    assert _metric(metrics, "hetang_janus_events_total", emitter="spoof", type="session") == 2

    made: list[RTCPeerConnection] = []
    venue = JanusVenue(client, session_id, branch, ice)
    try:
        made.append(await publish(client, world, session_id, ice))
        await venue.subscribe()
        await until(lambda: len(venue.frames) >= 10, "frames at the venue")

        async def figures() -> dict[str, float]:
            text = await (await client.get("/metrics", headers=bearer)).text()
            return {
                "media": _metric(text, "hetang_janus_events_total", emitter="origin", type="media"),
                "webrtc": _metric(
                    text, "hetang_janus_events_total", emitter="origin", type="webrtc"
                ),
                "venue": _metric(text, "hetang_janus_venue_sent_kbps", venue="B1"),
                "publisher": _metric(text, "hetang_janus_publisher_kbps", session=session_id),
            }

        for _ in range(100):
            seen = await figures()
            if all(value > 0 for value in seen.values()):
                break
            await asyncio.sleep(0.1)
        assert all(value > 0 for value in seen.values()), seen
    finally:
        await venue.close()
        await close_all(made)
