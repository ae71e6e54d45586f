"""The stall guard (passthrough.stall) and its jitter-buffer hooks: on a real aiortc JitterBuffer
fed RTP packets, a hole lost for good is skipped to the next packet that surely begins a frame
and no partial frame ever comes out, and a keyframe waiting behind a hole (found among real VP8
packets) is skipped to sooner; through the relay's wiring with real aiortc peers, a viewer
whose link loses packets for good (retransmissions too) decodes again within a couple of
seconds instead of freezing until aiortc's buffer of 512 packets is full."""

from __future__ import annotations

import asyncio
import fractions
import os
import time

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from passthrough.fanout import Source
from passthrough.hooks import (
    jitter_blocked,
    jitter_buffer,
    jitter_origin,
    keyframe_behind_hole,
    skip_jitter_hole,
    vp8_keyframe_start,
)
from passthrough.stall import GAP_S, KEY_STALL_S, STALL_S, StallGuard, StallWatch
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
    payload_types,
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


@pytest.mark.solo  # seconds on the clock: a busy machine delays the viewer's loop
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


# --- a keyframe waiting behind a hole --------------------------------------------------------

VP8 = 96


def vp8_packet(
    sequence_number: int, frame: int, *, key: bool, first: bool = True, partition_id: int = 0
) -> RtpPacket:
    """A VP8 RTP packet of frame number `frame` as aiortc's receiver stores it (`_data`: the
    payload after its descriptor): a frame's first packet starts partition 0, a keyframe's
    frame tag has bit 0 clear (RFC 6386 §9.1)."""
    descriptor = VpxPayloadDescriptor(partition_start=int(first), partition_id=partition_id)
    body = bytes([0x00 if key else 0x01]) + f"{frame}:{sequence_number};".encode()
    payload = bytes(descriptor) + body
    made = RtpPacket(
        payload_type=VP8,
        sequence_number=sequence_number,
        timestamp=frame * FRAME,
        ssrc=SSRC,
        payload=payload,
    )
    made._data = vp8_depayload(payload)  # type: ignore[attr-defined]
    return made


def test_vp8_keyframe_start_is_only_the_first_packet_of_a_keyframe() -> None:
    assert vp8_keyframe_start(vp8_packet(1, 0, key=True))
    assert not vp8_keyframe_start(vp8_packet(2, 0, key=True, first=False))  # its continuation
    assert not vp8_keyframe_start(vp8_packet(3, 1, key=False))  # a delta frame
    assert not vp8_keyframe_start(vp8_packet(4, 0, key=True, partition_id=1))  # partition 1
    with_picture_id = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=9))
    assert vp8_keyframe_start(RtpPacket(payload=with_picture_id + b"\x10\x02\x9d"))
    assert not vp8_keyframe_start(RtpPacket(payload=b""))
    assert not vp8_keyframe_start(RtpPacket(payload=bytes(VpxPayloadDescriptor(1, 0))))


def test_vp8_keyframe_start_on_what_aiortcs_encoder_sends() -> None:
    encoder = Vp8Encoder()
    starts = []
    for index, force_keyframe in enumerate([False, False, True]):
        picture = av.VideoFrame(320, 240, "yuv420p")
        for plane in picture.planes:
            plane.update(os.urandom(plane.buffer_size))  # noise: a keyframe of many packets
        picture.pts, picture.time_base = index * FRAME, fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(picture, force_keyframe=force_keyframe)
        assert len(payloads) > 1
        starts.append([vp8_keyframe_start(RtpPacket(payload=p)) for p in payloads])
    first, delta, forced = starts
    assert first[0] and not any(first[1:])  # an encoder starts with a keyframe
    assert not any(delta)
    assert forced[0] and not any(forced[1:])


def feed_vp8(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[JitterFrame]:
    out = []
    for made in packets:
        _, complete = buffer.add(made)
        if complete is not None:
            out.append(complete)
    return out


def test_the_newest_keyframe_start_after_the_first_hole_is_found() -> None:
    buffer = JitterBuffer(capacity=512, is_video=True)
    # frame 0 (key): 10-12 of which 11 is lost; frame 1: 13; frame 2 (key): 14-15 of which 14
    # is lost; frame 3 (key): 16-17; frame 4: 18
    out = feed_vp8(
        buffer,
        [
            vp8_packet(10, 0, key=True),
            vp8_packet(12, 0, key=True, first=False),
            vp8_packet(13, 1, key=False),
            vp8_packet(15, 2, key=True, first=False),  # a continuation: no keyframe start
        ],
    )
    assert out == []
    # the keyframe at the origin is before the hole: nothing worth skipping to yet
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0
    feed_vp8(buffer, [vp8_packet(16, 3, key=True), vp8_packet(17, 3, key=True, first=False)])
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 6
    feed_vp8(buffer, [vp8_packet(18, 4, key=False), vp8_packet(20, 5, key=True)])
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 10  # the newest one
    assert keyframe_behind_hole(buffer, lambda made: False) == 0
    assert jitter_origin(buffer) == 10


def test_no_keyframe_is_found_without_a_hole() -> None:
    buffer = JitterBuffer(capacity=512, is_video=True)
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0  # empty
    # a keyframe still arriving: no hole before it, nothing to skip
    feed_vp8(buffer, [vp8_packet(20, 0, key=True), vp8_packet(21, 0, key=True, first=False)])
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0
    out = feed_vp8(buffer, [vp8_packet(22, 1, key=True), vp8_packet(23, 2, key=False)])
    assert [frame.timestamp for frame in out] == [0, FRAME]
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0


def test_a_keyframe_behind_a_hole_is_found_across_the_sequence_number_wrap() -> None:
    buffer = JitterBuffer(capacity=512, is_video=True)
    feed_vp8(buffer, [vp8_packet(65534, 0, key=False), vp8_packet(0, 1, key=True)])
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 2  # 65535 is missing
    buffer.remove(2)
    assert jitter_origin(buffer) == 0
    [frame] = feed_vp8(buffer, [vp8_packet(1, 2, key=False)])
    assert frame.data == b"\x001:0;"  # the keyframe, whole, once the next frame begins


def test_with_a_keyframe_waiting_the_watch_acts_after_key_stall_s_and_keeps_no_gap() -> None:
    watch = StallWatch()
    assert not watch.stuck(0.0, 10, blocked=True, key_waits=True)
    assert not watch.stuck(KEY_STALL_S - 0.01, 10, blocked=True, key_waits=True)
    assert watch.stuck(KEY_STALL_S, 10, blocked=True, key_waits=True)
    assert watch.stuck(KEY_STALL_S + 0.01, 10, blocked=True, key_waits=True)  # no gap to keep
    # a hole with no keyframe behind it waits a whole gap after any action
    assert not watch.stuck(STALL_S + 0.1, 10, blocked=True)
    assert watch.stuck(KEY_STALL_S + 0.02 + GAP_S, 10, blocked=True)
    # frames moved on: the key_stall_s is counted afresh
    assert not watch.stuck(2.0, 30, blocked=True, key_waits=True)
    assert not watch.stuck(2.0 + KEY_STALL_S - 0.01, 30, blocked=True, key_waits=True)
    assert watch.stuck(2.0 + KEY_STALL_S, 30, blocked=True, key_waits=True)


def test_without_a_keyframe_waiting_the_watch_keeps_its_old_timing() -> None:
    watch = StallWatch()
    assert KEY_STALL_S < STALL_S
    assert not watch.stuck(0.0, 10, blocked=True)
    assert not watch.stuck(KEY_STALL_S, 10, blocked=True)
    assert not watch.stuck(STALL_S - 0.01, 10, blocked=True)
    assert watch.stuck(STALL_S, 10, blocked=True)
    assert not watch.stuck(STALL_S + GAP_S - 0.01, 10, blocked=True)
    assert watch.stuck(STALL_S + GAP_S + 0.01, 10, blocked=True)


def vp8_receiver(pc: RTCPeerConnection) -> RTCRtpReceiver:
    """A video receiver that has negotiated VP8 on payload type 96 (as receive() sets it)."""
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=VP8)
    receiver._RTCRtpReceiver__codecs[VP8] = codec  # type: ignore[attr-defined]
    return receiver


async def guarded(
    peers: PeerFactory, packets: list[RtpPacket]
) -> tuple[RTCRtpReceiver, JitterBuffer, StallGuard, StallWatch]:
    """A VP8 receiver fed these packets through aiortc's own handling, and a guard watching it."""
    receiver = vp8_receiver(peers())
    for made in packets:
        await receiver._handle_rtp_packet(made, arrival_time_ms=0)
    guard = StallGuard([receiver])
    [watch] = guard._watches
    return receiver, jitter_buffer(receiver), guard, watch


async def test_the_guard_skips_straight_to_a_keyframe_waiting_behind_a_hole(
    peers: PeerFactory,
) -> None:
    # frame 0: 0; frame 1: 1-2 of which 2 is lost for good; frame 2: 3; frame 3 (key): 4-5;
    # frame 4: 6
    receiver, buffer, guard, watch = await guarded(
        peers,
        [
            vp8_packet(0, 0, key=False),
            vp8_packet(1, 1, key=False),
            vp8_packet(3, 2, key=False),
            vp8_packet(4, 3, key=True),
            vp8_packet(5, 3, key=True, first=False),
            vp8_packet(6, 4, key=False),
        ],
    )
    assert jitter_origin(buffer) == 1  # frame 0 left, frame 1 waits for packet 2
    await guard._check(receiver, watch, 100.0)
    await guard._check(receiver, watch, 100.0 + KEY_STALL_S - 0.01)
    assert (jitter_origin(buffer), guard.skips) == (1, 0)  # a resend may still come
    await guard._check(receiver, watch, 100.0 + KEY_STALL_S)
    assert (jitter_origin(buffer), guard.skips) == (4, 1)  # straight to the keyframe
    assert jitter_blocked(buffer) is None
    [frame] = feed_vp8(buffer, [vp8_packet(7, 5, key=False)])
    assert frame.data == b"\x003:4;\x003:5;"


async def test_without_a_keyframe_the_guard_skips_hole_by_hole_as_before(
    peers: PeerFactory,
) -> None:
    receiver, buffer, guard, watch = await guarded(
        peers,
        [
            vp8_packet(0, 0, key=False),
            vp8_packet(1, 1, key=False),
            vp8_packet(3, 2, key=False),
            vp8_packet(4, 3, key=False),
            vp8_packet(6, 4, key=False),
        ],
    )
    await guard._check(receiver, watch, 100.0)
    await guard._check(receiver, watch, 100.0 + KEY_STALL_S)
    assert (jitter_origin(buffer), guard.skips) == (1, 0)
    await guard._check(receiver, watch, 100.0 + STALL_S)
    assert (jitter_origin(buffer), guard.skips) == (4, 1)  # 3 may be the middle of frame 2
