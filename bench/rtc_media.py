"""Media for the relay benchmark: a synthetic 640x360 camera, a pinned VP8 bitrate and a frame
counter that receives without decoding."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import av
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.codecs import vpx
from av.video.frame import PictureType

from passthrough.fanout import RelayCounters, Source
from passthrough.peer import IceSettings

if TYPE_CHECKING:
    from av.container import InputContainer

ICE = IceSettings(hosts=("127.0.0.1",))  # aioice leaves loopback out unless told
WIDTH, HEIGHT, FPS = 640, 360, 30
# A moving test card with fresh temporal noise in every frame, so motion compensation alone
# cannot make it nearly free to encode.
PATTERN = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=8:allf=t"
VP8_TARGET_BPS = 1_000_000


def pin_vp8_bitrate(bps: int = VP8_TARGET_BPS, *, follow_remb: bool = False) -> None:
    """Every VP8 encoder of this process sends `bps` whatever REMB says, so both relays carry
    the same load; with follow_remb, REMB may still lower it (as a browser would)."""
    vpx.DEFAULT_BITRATE = bps
    vpx.MAX_BITRATE = bps
    if not follow_remb:
        vpx.MIN_BITRATE = bps


class SyntheticCamera(VideoStreamTrack):
    """640x360 frames at 30 fps from FFmpeg's test source, paced like a camera."""

    def __init__(self) -> None:
        super().__init__()
        self._container: InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        """The next frame, on time."""
        pts, time_base = await self.next_timestamp()
        if self._container is None or self._frames is None:
            self._container = av.open(PATTERN, format="lavfi")
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
