"""The jitter-buffer hooks that find a keyframe waiting behind a hole and the packets still
missing, on a real aiortc JitterBuffer fed VP8 RTP packets (the resend rule, the stall watch and
the quality rule have their own files: test_resend.py, test_stall_guard.py, test_quality.py)."""

from __future__ import annotations

from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from passthrough.hooks import jitter_missing, keyframe_behind_hole, vp8_keyframe_start

SSRC = 1234
FRAME = 3000


# --- the jitter buffer -----------------------------------------------------------------------


def vp8_packet(seq: int, frame: int, *, key: bool, first: bool) -> RtpPacket:
    """A VP8 RTP packet as aiortc's receiver stores it (`_data`: the payload after the
    descriptor); a frame's first packet starts partition 0, a keyframe's tag has bit 0 clear."""
    descriptor = bytes(VpxPayloadDescriptor(partition_start=1 if first else 0, partition_id=0))
    body = bytes([0x00 if key else 0x01]) + b"\x00" * 20
    packet = RtpPacket(
        payload_type=96,
        sequence_number=seq,
        timestamp=frame * FRAME,
        ssrc=SSRC,
        payload=descriptor + body,
    )
    packet._data = body  # type: ignore[attr-defined]
    return packet


def fill(buffer: JitterBuffer, packets: list[RtpPacket]) -> None:
    for packet in packets:
        buffer.add(packet)


def test_vp8_keyframe_start_is_the_first_packet_of_a_key_frame_only() -> None:
    assert vp8_keyframe_start(vp8_packet(1, 0, key=True, first=True))
    assert not vp8_keyframe_start(vp8_packet(2, 0, key=True, first=False))
    assert not vp8_keyframe_start(vp8_packet(3, 1, key=False, first=True))
    empty = RtpPacket(payload_type=96, sequence_number=4, ssrc=SSRC, payload=b"")
    assert not vp8_keyframe_start(empty)


def test_the_newest_keyframe_behind_a_hole_and_the_packets_still_missing_are_found() -> None:
    buffer = JitterBuffer(capacity=128, is_video=True)
    # frame 0: 0-1 (delta, leaves only with frame 1 complete), frame 1: 2-3 of which 3 is lost,
    # frame 2 (key): 4-5, frame 3: 6, 7 lost, frame 4 (key): 8-9, frame 5: 10
    fill(
        buffer,
        [
            vp8_packet(0, 0, key=False, first=True),
            vp8_packet(1, 0, key=False, first=False),
            vp8_packet(2, 1, key=False, first=True),
        ],
    )
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0  # no hole yet
    assert jitter_missing(buffer) == []
    fill(
        buffer,
        [
            vp8_packet(4, 2, key=True, first=True),
            vp8_packet(5, 2, key=True, first=False),
            vp8_packet(6, 3, key=False, first=True),
            vp8_packet(8, 4, key=True, first=True),
            vp8_packet(9, 4, key=True, first=False),
            vp8_packet(10, 5, key=False, first=True),
        ],
    )
    origin = buffer._origin
    assert origin == 2  # frame 0 left, frame 1 waits for packet 3
    assert jitter_missing(buffer) == [3, 7]
    # the newest keyframe: frame 4, six slots on from the origin
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 6
    assert keyframe_behind_hole(buffer, lambda packet: False) == 0
    buffer.remove(6)
    assert jitter_missing(buffer) == []
    assert keyframe_behind_hole(buffer, vp8_keyframe_start) == 0


def test_missing_numbers_wrap_around_like_sequence_numbers() -> None:
    buffer = JitterBuffer(capacity=128, is_video=True)
    fill(
        buffer,
        [
            vp8_packet(65534, 0, key=True, first=True),
            vp8_packet(1, 1, key=False, first=True),
        ],
    )
    assert jitter_missing(buffer) == [65535, 0]
