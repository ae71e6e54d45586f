"""Media for the relay benchmark: a synthetic 640x360 camera (and its 320x180 lighter picture), a
pinned VP8 bitrate and a frame counter that receives without decoding."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import aiortc.rtcrtpsender
import av
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.codecs import get_encoder, vpx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.video.frame import PictureType

from passthrough.fanout import RelayCounters, Source
from passthrough.peer import IceSettings

if TYPE_CHECKING:
    from av.container import InputContainer

# aioice leaves loopback out unless told; Janus never offers loopback, so its benchmark names
# a veth address of its own (HETANG_BENCH_ICE_HOST, set for the children of that scenario).
ICE = IceSettings(hosts=(os.environ.get("HETANG_BENCH_ICE_HOST") or "127.0.0.1",))
WIDTH, HEIGHT, FPS = 640, 360, 30
LOW_WIDTH, LOW_HEIGHT = 320, 180  # the lighter picture of the two-quality mode
# A moving test card with fresh temporal noise in every frame, so motion compensation alone
# cannot make it nearly free to encode.
PATTERN = "testsrc2=size={width}x{height}:rate={fps},noise=alls=8:allf=t"
VP8_TARGET_BPS = 1_000_000
VP8_LOW_BPS = 250_000


def pin_vp8_bitrate(bps: int = VP8_TARGET_BPS, *, follow_remb: bool = False) -> None:
    """Every VP8 encoder of this process sends `bps` whatever REMB says, so both relays carry
    the same load; with follow_remb, REMB may still lower it (as a browser would)."""
    vpx.DEFAULT_BITRATE = bps
    vpx.MAX_BITRATE = bps
    if not follow_remb:
        vpx.MIN_BITRATE = bps


def pin_layer_bitrates(
    high: int = VP8_TARGET_BPS, low: int = VP8_LOW_BPS, *, follow_remb: bool = False
) -> None:
    """Two qualities from one process: each VP8 encoder is pinned by the picture it is given
    (LOW_WIDTH or narrower: `low`, else `high`), whatever REMB says; with follow_remb, REMB may
    still lower it. aiortc's bitrate bounds are module-wide, hence the encoder of our own."""
    vpx.DEFAULT_BITRATE, vpx.MIN_BITRATE, vpx.MAX_BITRATE = high, min(low, high), high
    original = get_encoder

    def pinned_encoder(codec: RTCRtpCodecParameters) -> Any:
        if codec.mimeType.lower() == "video/vp8":
            return PinnedVp8Encoder(high, low, follow_remb)
        return original(codec)

    if not callable(getattr(aiortc.rtcrtpsender, "get_encoder", None)):
        raise RuntimeError("aiortc changed: rtcrtpsender no longer calls get_encoder")
    setattr(aiortc.rtcrtpsender, "get_encoder", pinned_encoder)  # noqa: B010


class PinnedVp8Encoder(vpx.Vp8Encoder):
    """aiortc's VP8 encoder at a bitrate chosen by the first frame's width."""

    def __init__(self, high: int, low: int, follow_remb: bool) -> None:
        super().__init__()
        self._bitrates = (high, low)
        self._follow_remb = follow_remb
        self._pinned: int | None = None

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Pin on the first frame, then encode as aiortc does."""
        if self._pinned is None and isinstance(frame, av.VideoFrame):
            high, low = self._bitrates
            self._pinned = low if frame.width <= LOW_WIDTH else high
            vpx.Vp8Encoder.target_bitrate.fset(self, self._pinned)  # type: ignore[attr-defined]
        return super().encode(frame, force_keyframe)

    @property
    def target_bitrate(self) -> int:
        """What the encoder aims at."""
        return int(vpx.Vp8Encoder.target_bitrate.fget(self))  # type: ignore[attr-defined]

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        # REMB from the relay: ignored unless followed, and never above the pinned rate.
        if self._follow_remb and self._pinned is not None:
            vpx.Vp8Encoder.target_bitrate.fset(self, min(bitrate, self._pinned))  # type: ignore[attr-defined]


class SyntheticCamera(VideoStreamTrack):
    """Frames (640x360 unless told) at 30 fps from FFmpeg's test source, paced like a camera."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self._pattern = PATTERN.format(width=width, height=height, fps=FPS)
        self._container: InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        """The next frame, on time."""
        pts, time_base = await self.next_timestamp()
        if self._container is None or self._frames is None:
            self._container = av.open(self._pattern, format="lavfi")
            self._frames = self._container.decode(video=0)
        frame = next(self._frames)
        # lavfi marks every frame as an I picture and aiortc's encoder passes that on: every
        # frame would be a keyframe (twice the bitrate, and every join instant).
        frame.pict_type = PictureType.NONE
        frame.pts = pts
        frame.time_base = time_base
        self.sent += 1
        return frame

    def stop(self) -> None:
        """Release the test source."""
        super().stop()
        if self._container is not None:
            self._container.close()
            self._container = None


class FrameCounter(Source):
    """A Source nobody subscribes to: counts the encoded frames and bytes a tapped receiver
    completes, so a "light" subscriber receives and reassembles without decoding."""

    def __init__(self) -> None:
        super().__init__("video", RelayCounters())
        self.bytes_in = 0
        self.first_at: float | None = None

    def push(self, codec_name: str, data: bytes, timestamp: int) -> None:
        """Count one frame."""
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.frames_in += 1
        self.bytes_in += len(data)


class PacketCounter:
    """The lightest subscriber: its RTP packets are counted where they reach the peer's UDP
    sockets and go no further (no decryption, no jitter buffer); a frame ends at the packet with
    the marker bit (RTP headers are not encrypted). STUN, DTLS and RTCP go on to aioice as
    before, so ICE consent and the DTLS session stay alive."""

    def __init__(self) -> None:
        self.frames_in = 0
        self.bytes_in = 0
        self.packets_in = 0

    def install(self, pc: RTCPeerConnection) -> None:
        """Count from now on (call once the peer is connected)."""
        seen = set()
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            protocols = getattr(getattr(ice, "_connection", None), "_protocols", None)
            if not isinstance(protocols, list):
                raise RuntimeError("aioice changed: no _connection._protocols to count on")
            for protocol in protocols:
                if id(protocol) not in seen:
                    seen.add(id(protocol))
                    protocol.datagram_received = self._counting(protocol.datagram_received)

    def _counting(self, deliver: Callable[[bytes, Any], None]) -> Callable[[bytes, Any], None]:
        def received(data: bytes, addr: Any) -> None:
            # RTP version 2 and not RTCP (RFC 5761: RTCP packet types 192-223).
            if len(data) > 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
                self.packets_in += 1
                self.bytes_in += len(data)
                if data[1] & 0x80:
                    self.frames_in += 1
                return
            deliver(data, addr)

        return received
