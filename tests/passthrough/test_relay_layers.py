"""Two video layers through the relay's own wiring with real aiortc peers on loopback: a publisher
sending a full and a lighter picture, a viewer reached through a forwarder that drops packets
when told. The viewer's own receiver reports and REMB (read by the hook on its sender) move it
to the lighter layer at a keyframe and back when the link is clean again; its stream stays one
stream (no packet counted lost, timestamps a frame apart) and it decodes throughout; audio goes
on. A publisher with one video track still reaches everyone, on the one layer there is."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver

from passthrough.fanout import Source
from passthrough.quality import HIGH, LOW, QualityRule
from passthrough.wiring import (
    LOW_VIDEO,
    Feed,
    Subscription,
    accept_publisher,
    answer_viewer,
    publisher_peer,
)
from tests.support.rtc_peers import (
    LOOPBACK,
    LossyLink,
    PeerFactory,
    Viewer,
    close_all,
    lossy_answer,
    offer_to_publish,
    offer_to_view,
    offer_two_layers,
    payload_types,
    until,
)

# Decisions within seconds and timestamps a frame apart: on a machine busy with other tests the
# viewer's loop falls behind, its stall guard skips frames and reports come late.
pytestmark = pytest.mark.solo

# The default rule with short waits: up after 3 clean seconds instead of 25.
FAST = QualityRule(clean_s=3.0, clean_max_s=12.0, probation_s=4.0)
FRAME = 3000  # RTP units between frames at 30 fps
HIGH_SIZE, LOW_SIZE = (320, 240), (160, 120)
WAIT_S = 20.0


async def publish(
    relay_ins: list[RTCPeerConnection], sources: dict[str, Source], publisher: RTCPeerConnection
) -> Feed:
    relay_in = publisher_peer(LOOPBACK)
    relay_ins.append(relay_in)
    answer, feed = await accept_publisher(relay_in, publisher.localDescription, sources, LOOPBACK)
    await publisher.setRemoteDescription(answer)
    return feed


async def view(
    peers: PeerFactory, sources: dict[str, Source], *, lossy: bool
) -> tuple[Viewer, Subscription, LossyLink | None]:
    viewer = await offer_to_view()
    answer, subscription = await answer_viewer(
        peers(), viewer.pc.localDescription, sources, LOOPBACK, FAST
    )
    link = None
    if lossy:
        link, answer = await lossy_answer(answer)
    await viewer.pc.setRemoteDescription(answer)
    return viewer, subscription, link


async def shows(viewer: Viewer, size: tuple[int, int], since: float, within: float = 5.0) -> None:
    """Wait until the viewer decodes frames of this size after `since`, and then only those
    (frames already in aiortc's jitter buffer and decoder may still come first)."""

    def settled() -> bool:
        later = [
            s for (at, _), s in zip(viewer.video_frames, viewer.sizes, strict=False) if at >= since
        ]
        return size in later and later[-1] == size

    await until(settled, f"{size} frames", within=within)
    await viewer.frames_after(time.monotonic(), 5)
    assert viewer.sizes[-5:] == [size] * 5


def video_receiver(viewer: Viewer) -> RTCRtpReceiver:
    return next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")


async def packets_lost(viewer: Viewer) -> int:
    [inbound] = [
        s for s in (await video_receiver(viewer).getStats()).values() if s.type == "inbound-rtp"
    ]
    return int(inbound.packetsLost)


def wire_steps(link: LossyLink, payload_type: int, since: float) -> list[int]:
    """The timestamp steps between the video frames the relay sent through `link` since
    `since`, after checking that their sequence numbers follow one another."""
    packets = [(seq, ts) for at, pt, seq, ts in link.passed if at >= since and pt == payload_type]
    gaps = [(a, b) for (a, _), (b, _) in itertools.pairwise(packets) if b != (a + 1) & 0xFFFF]
    assert not gaps, f"sequence numbers skipped: {gaps[:5]}"
    stamps = list(dict.fromkeys(ts for _, ts in packets))
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(stamps)]
    assert all(0 < step <= 2 * FRAME for step in steps), [s for s in steps if s > 2 * FRAME]
    return steps


def pts_steps(viewer: Viewer, start: float, end: float) -> list[int]:
    """RTP timestamp steps between the video frames decoded from `start` to `end`."""
    stamps = [pts for at, pts in viewer.video_frames if start <= at <= end]
    return [(b - a) % (1 << 32) for a, b in itertools.pairwise(stamps)]


async def test_a_lossy_viewer_goes_down_at_a_keyframe_and_back_up_when_clean(
    peers: PeerFactory, sources: dict[str, Source], relay_ins: list[RTCPeerConnection]
) -> None:
    publisher = await offer_two_layers(high=HIGH_SIZE, low=LOW_SIZE)
    viewer: Viewer | None = None
    link: LossyLink | None = None
    try:
        await publish(relay_ins, sources, publisher)
        await until(lambda: sources[LOW_VIDEO].frames_in and sources["video"].frames_in, "frames")
        viewer, subscription, link = await view(peers, sources, lossy=True)
        choice = subscription.choice
        assert choice is not None and link is not None
        await viewer.frames_after(0, 20, within=WAIT_S)
        assert viewer.sizes[-1] == HIGH_SIZE
        assert choice.layer == HIGH
        await until(lambda: choice.reports >= 2, "receiver reports about our video")

        # The link gets bad: two lossy reports in a row and the rule wants the low layer. It is
        # clean again from the decision on, so the low layer's keyframe arrives whole.
        link.lossy = lambda: choice.state.layer == HIGH
        link.loss = 0.4
        await until(lambda: choice.state.layer == LOW, "a decision to go down")
        link.loss = 0.0
        # The move waits for the low layer's keyframe (asked for at once): ~0.1 s on loopback.
        await until(lambda: choice.layer == LOW, "the move to the low layer", within=2.0)
        [down] = choice.switches
        assert down.layer == LOW
        assert down.reason.startswith("loss ")
        assert down.done_at - down.decided_at < 1.0
        await shows(viewer, LOW_SIZE, down.done_at)
        # What the lossy link dropped is resent or, when the resend budget was spent, skipped by
        # the viewer's stall guard at a keyframe: from here on nothing is missing.
        await asyncio.sleep(1.0)
        settled = time.monotonic()
        lost = await packets_lost(viewer)
        audio_before = viewer.audio_frames

        # Clean for FAST.clean_s: back up, again at a keyframe.
        await until(lambda: choice.layer == HIGH, "the move back up", within=FAST.clean_s + 6)
        up = choice.switches[-1]
        assert up.layer == HIGH
        assert up.reason == "clean"
        assert up.decided_at - down.decided_at >= FAST.clean_s  # clean since the decision
        await shows(viewer, HIGH_SIZE, up.done_at)
        # One stream throughout the clean part, across both moves. As sent from the decision
        # to go down on: the sequence numbers go on and each frame's timestamp is about one
        # frame on. As decoded once settled: aiortc counts no gap as lost, and the frames'
        # timestamps step by about a frame, across the move up too.
        assert wire_steps(link, payload_types(viewer.pc.remoteDescription.sdp)[0], down.decided_at)
        assert await packets_lost(viewer) == lost
        steps = pts_steps(viewer, settled, time.monotonic())
        steps_up = pts_steps(viewer, up.done_at - 1.0, up.done_at + 1.0)
        assert steps_up
        assert all(0 < step <= 2 * FRAME for step in steps_up), steps_up
        assert all(0 < step <= 3 * FRAME for step in steps), [s for s in steps if s > 3 * FRAME]
        # Decoded frames throughout (30 fps: no second without them) and sound all along.
        times = [at for at, _ in viewer.video_frames if at >= settled]
        assert max(b - a for a, b in itertools.pairwise(times)) < 0.5
        assert viewer.audio_frames > audio_before
        assert link.dropped > 0
    finally:
        if link is not None:
            link.close()
        if viewer is not None:
            await viewer.close()
        await close_all([publisher])


async def test_a_publisher_with_one_video_track_reaches_viewers_on_the_one_layer(
    peers: PeerFactory, sources: dict[str, Source], relay_ins: list[RTCPeerConnection]
) -> None:
    publisher = await offer_to_publish()
    viewer: Viewer | None = None
    try:
        await publish(relay_ins, sources, publisher)
        assert sources[LOW_VIDEO].codec is None
        viewer, subscription, _ = await view(peers, sources, lossy=False)
        await viewer.frames_after(0, 10, within=WAIT_S)
        assert viewer.audio_frames > 0
        choice = subscription.choice
        assert choice is not None
        # Even when its feedback asks for the low layer, there is none: it stays where it is.
        choice.on_loss(0.5)
        choice.on_loss(0.5)
        assert (choice.state.layer, choice.layer) == (LOW, HIGH)
        assert choice.outlet.pending is None
        moment = time.monotonic()
        await viewer.frames_after(moment, 10)
        assert sources[LOW_VIDEO].frames_in == 0
    finally:
        if viewer is not None:
            await viewer.close()
        await close_all([publisher])


async def test_a_republish_with_one_video_track_moves_low_viewers_back_up(
    peers: PeerFactory, sources: dict[str, Source], relay_ins: list[RTCPeerConnection]
) -> None:
    two = await offer_two_layers(high=HIGH_SIZE, low=LOW_SIZE)
    one: RTCPeerConnection | None = None
    viewer: Viewer | None = None
    try:
        feed = await publish(relay_ins, sources, two)
        viewer, subscription, _ = await view(peers, sources, lossy=False)
        choice = subscription.choice
        assert choice is not None
        await viewer.frames_after(0, 5, within=WAIT_S)
        choice.on_loss(0.5)
        choice.on_loss(0.5)
        await until(lambda: choice.layer == LOW, "the move to the low layer")
        await shows(viewer, LOW_SIZE, choice.switches[-1].done_at)

        # An older page takes over with one video track: the low layer is gone.
        feed.stop()
        await two.close()
        one = await offer_to_publish()
        await publish(relay_ins, sources, one)
        assert not sources[LOW_VIDEO].connected
        choice.refresh()  # Broadcasts.publish does this for every venue
        await until(lambda: choice.layer == HIGH, "the move back to the one layer")
        await shows(viewer, (640, 480), choice.switches[-1].done_at)  # aiortc's VideoStreamTrack
    finally:
        if viewer is not None:
            await viewer.close()
        await close_all([pc for pc in (two, one) if pc is not None])
