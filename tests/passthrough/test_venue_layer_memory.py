"""A venue's video layer outlives its connection: through the server's Broadcasts with real aiortc
peers on loopback, a venue that the rule moved to the lighter picture and that subscribes again
in the same broadcast (its agent does after a stall) starts on the lighter picture at once
instead of flooding its thin link with the full one again; another venue still starts on the
full picture, and a new broadcast forgets what the last one learnt."""

from __future__ import annotations

from datetime import UTC, datetime

from aiortc import RTCPeerConnection

from passthrough.quality import QualityRule
from server.rtc.broadcasts import Broadcasts
from tests.support.rtc_peers import (
    LOOPBACK,
    Viewer,
    offer_to_view,
    offer_two_layers,
    until,
)

HIGH_SIZE, LOW_SIZE = (320, 240), (160, 120)
# Any REMB is "too little" and one is enough: the first feedback moves a venue down; never up.
DOWN_AT_ONCE = QualityRule(
    remb_need=1000.0, remb_reports_down=1, clean_s=float("inf"), clean_max_s=float("inf")
)
SESSION = "S1"


async def publish(broadcasts: Broadcasts, made: list[RTCPeerConnection]) -> None:
    publisher = await offer_two_layers(high=HIGH_SIZE, low=LOW_SIZE)
    made.append(publisher)
    answer = await broadcasts.publish(
        SESSION, ("MAIN", "B1", "B2"), publisher.localDescription, datetime.now(UTC)
    )
    await publisher.setRemoteDescription(answer)

    def flowing() -> bool:
        layers = broadcasts.layers(SESSION)
        return bool(layers["video"].frames and layers["video-low"].frames)

    await until(flowing, "both layers flowing")


async def subscribe(broadcasts: Broadcasts, venue: str, made: list[RTCPeerConnection]) -> Viewer:
    viewer = await offer_to_view()
    made.append(viewer.pc)
    answer = await broadcasts.subscribe(SESSION, venue, viewer.pc.localDescription)
    await viewer.pc.setRemoteDescription(answer)
    return viewer


async def test_a_venue_that_went_down_comes_back_on_the_lighter_picture(
    made: list[RTCPeerConnection],
) -> None:
    broadcasts = Broadcasts(LOOPBACK, rule=DOWN_AT_ONCE)
    try:
        await publish(broadcasts, made)
        first = await subscribe(broadcasts, "B1", made)
        await first.frames_after(0, 5)
        assert first.sizes[0] == HIGH_SIZE, "a venue starts on the full picture"
        await until(lambda: broadcasts.status(SESSION).quality.get("B1") == "low", "B1 goes low")
        [down] = broadcasts.layer_switches(SESSION)["B1"]
        assert down.layer == "low" and down.reason.startswith("REMB")

        # The agent subscribes again (a stall): the new connection is on the low layer from
        # its very first frame, and the wall says so before any feedback came.
        again = await subscribe(broadcasts, "B1", made)
        assert broadcasts.status(SESSION).quality["B1"] == "low"
        await again.frames_after(0, 10)
        assert set(again.sizes) == {LOW_SIZE}, again.sizes
        [moved] = broadcasts.layer_switches(SESSION)["B1"]
        assert moved.layer == "low" and moved.reason == down.reason
        assert broadcasts.status(SESSION).subscribers == 1, "the old connection is replaced"

        # Another venue learns for itself: it starts on the full picture.
        other = await subscribe(broadcasts, "B2", made)
        await other.frames_after(0, 3)
        assert other.sizes[0] == HIGH_SIZE

        # A new broadcast of the session starts everyone afresh.
        assert await broadcasts.end(SESSION)
        await publish(broadcasts, made)
        fresh = await subscribe(broadcasts, "B1", made)
        await fresh.frames_after(0, 3)
        assert fresh.sizes[0] == HIGH_SIZE
    finally:
        await broadcasts.close_all()
