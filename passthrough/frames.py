"""Pure facts about encoded frames: which ones are keyframes, and how they become packets."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, TypeAlias

import av

if TYPE_CHECKING:
    from av.stream import Stream

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
H264_KEY_NAL_TYPES = frozenset({5, 7})  # IDR slice, sequence parameter set

EncodedPacket: TypeAlias = "av.Packet[Stream]"


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """True when a decoder can start from this frame (audio frames always can)."""
    name = codec_name.upper()
    if name == "VP8":
        # RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame.
        return len(data) >= 3 and data[0] & 0x01 == 0
    if name == "H264":
        return any(nal_type in H264_KEY_NAL_TYPES for nal_type in annexb_nal_types(data))
    return True


def vp8_picture_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 §9.1), None for other frames."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def annexb_nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex-B byte stream, in order."""
    types = []
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def clock_rate(kind: str) -> int:
    """The RTP clock of a media kind as aiortc hands it over."""
    return VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK


def to_packet(data: bytes, pts: int, rate: int) -> EncodedPacket:
    """An encoded frame as the av.Packet aiortc's senders pack without encoding."""
    packet: EncodedPacket = av.Packet(data)
    packet.pts = pts
    packet.time_base = Fraction(1, rate)
    return packet
