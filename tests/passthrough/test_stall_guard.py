"""The stall guard (passthrough.stall) and its jitter-buffer hooks: on a real aiortc JitterBuffer
fed RTP packets, a hole lost for good is skipped to the next packet that surely begins a frame
and no partial frame ever comes out; through the relay's wiring with real aiortc peers, a viewer
whose link loses packets for good (retransmissions too) decodes again within a couple of
seconds instead of freezing until aiortc's buffer of 512 packets is full."""

from __future__ import annotations

import asyncio
import re
import time

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from passthrough.fanout import Source
from passthrough.hooks import jitter_blocked, jitter_origin, skip_jitter_hole
from passthrough.stall import StallWatch
from passthrough.wiring import (
    accept_publisher,
    answer_viewer,
    publisher_peer,
)
from tests.support.rtc_peers import (
    LOOPBACK,
    LossyLink,
    PeerFactory,
    Viewer,
    lossy_answer,
    offer_to_publish,
    offer_to_view,
)

SSRC = 4321
FRAME = 3000  # RTP units between frames


def packet(sequence_number: int, frame: int) -> RtpPacket:
    """An RTP packet of frame number `frame`, its depayloaded data naming both."""
    made = RtpPacket(
        payload_type=96, sequence_number=sequence_number, timestamp=frame * FRAME, ssrc=SSRC
    )
    made._data = f"{frame}:{sequence_number};".encode()  # type: ignore[attr-defined]
    return made


def frame_data(frame: int, sequence_numbers: list[int]) -> bytes:
    return b"".join(f"{frame}:{seq};".encode() for seq in sequence_numbers)


def feed(buffer: JitterBuffer, packets: list[tuple[int, int]]) -> list[JitterFrame]:
    out = []
    for seq, frame in packets:
        _, complete = buffer.add(packet(seq, frame))
        if complete is not None:
            out.append(complete)
    return out


def test_a_hole_is_skipped_to_the_next_whole_frame_and_no_partial_frame_comes_out() -> None:
    buffer = JitterBuffer(capacity=512, is_video=True)
    # frames 0: 0-2, 1: 3-5, 2: 6-8, 3: 9-10, 4: 11-12; lost for good: 4 and 6
    out = feed(buffer, [(0, 0), (1, 0), (2, 0), (3, 1)])
    assert [f.data for f in out] == [frame_data(0, [0, 1, 2])]
    assert jitter_blocked(buffer) is None  # nothing waits behind a hole yet
    out = feed(buffer, [(5, 1), (7, 2), (8, 2), (9, 3), (10, 3), (11, 4)])
    assert out == []  # aiortc waits for packet 4, which never comes
    assert jitter_blocked(buffer) == SSRC
    assert jitter_origin(buffer) == 3

    # 7 follows the second hole: it may be the middle of frame 2, so frame 3 is where to go
    assert skip_jitter_hole(buffer) == 6
    assert jitter_origin(buffer) == 9
    assert jitter_blocked(buffer) is None
    out = feed(buffer, [(12, 4), (13, 5)])
    assert [f.data for f in out] == [frame_data(3, [9, 10]), frame_data(4, [11, 12])]
    assert [f.timestamp for f in out] == [3 * FRAME, 4 * FRAME]
    assert feed(buffer, [(4, 1), (6, 2)]) == []  # late retransmissions are too late


def test_nothing_is_skipped_without_a_frame_start_behind_the_hole() -> None:
    buffer = JitterBuffer(capacity=512, is_video=True)
    feed(buffer, [(0, 0), (1, 0)])
    assert skip_jitter_hole(buffer) == 0  # no hole
    feed(buffer, [(3, 0), (5, 1)])  # 2 and 4 lost: 5's predecessor unknown
    assert jitter_blocked(buffer) == SSRC
    assert skip_jitter_hole(buffer) == 0
    assert jitter_origin(buffer) == 0
    assert skip_jitter_hole(JitterBuffer(capacity=512, is_video=True)) == 0  # empty


def test_the_watch_acts_once_frames_stopped_while_packets_wait_at_most_once_a_gap() -> None:
    watch = StallWatch(stall_s=0.7, gap_s=1.0)
    assert not watch.stuck(0.0, 10, blocked=True)
    assert not watch.stuck(0.5, 10, blocked=True)
    assert not watch.stuck(1.0, 10, blocked=False)  # nothing waiting: a quiet stream
    assert watch.stuck(1.0, 10, blocked=True)
    assert not watch.stuck(1.5, 10, blocked=True)  # within the gap
    assert watch.stuck(2.0, 10, blocked=True)
    assert not watch.stuck(3.5, 20, blocked=True)  # frames moved on
    assert not watch.stuck(4.0, 20, blocked=True)
    assert watch.stuck(4.2, 20, blocked=True)


def payload_types(sdp: str) -> tuple[int, int | None]:
    """The VP8 payload type of an SDP and that of its retransmissions, if any."""
    found = re.search(r"a=rtpmap:(\d+) VP8/90000", sdp)
    assert found is not None
    vp8 = found.group(1)
    rtx = re.search(rf"a=fmtp:(\d+) apt={vp8}\b", sdp)
    return int(vp8), int(rtx.group(1)) if rtx else None


async def test_a_viewer_losing_packets_for_good_decodes_again_within_two_seconds(
    peers: PeerFactory, sources: dict[str, Source], relay_ins: list[RTCPeerConnection]
) -> None:
    publisher = await offer_to_publish()
    viewer: Viewer | None = None
    link: LossyLink | None = None
    try:
        relay_in = publisher_peer(LOOPBACK)
        relay_ins.append(relay_in)
        answer, _ = await accept_publisher(relay_in, publisher.localDescription, sources, LOOPBACK)
        await publisher.setRemoteDescription(answer)
        viewer = await offer_to_view()
        answer, _ = await answer_viewer(peers(), viewer.pc.localDescription, sources, LOOPBACK)
        link, answer = await lossy_answer(answer)
        await viewer.pc.setRemoteDescription(answer)
        await viewer.frames_after(time.monotonic(), 20, within=10.0)
        assert viewer.guard is not None and viewer.guard.skips == 0

        vp8, rtx = payload_types(answer.sdp)
        link.hole(vp8, rtx, count=2, window_s=3.0)
        deadline = time.monotonic() + 5.0
        while not link.hole_seqs:
            assert time.monotonic() < deadline, "no packet was lost"
            await asyncio.sleep(0.01)
        lost_at = time.monotonic()
        # aiortc alone would wait for 512 packets: ~17 s of these one-packet frames at 30 fps
        await viewer.frames_after(lost_at + 0.5, 10, within=2.5)
        assert viewer.guard.skips >= 1
        assert len(link.hole_seqs) == 2
    finally:
        if link is not None:
            link.close()
        if viewer is not None:
            await viewer.close()
        await publisher.close()
