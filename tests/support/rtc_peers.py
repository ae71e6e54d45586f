"""aiortc peers for tests: a publisher of synthetic audio and video (one video track, or two:
the full picture and a lighter one, as the operator's page sends), and a decoding subscriber
that counts frames (both on loopback, as the server's ICE settings in tests are)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import av
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import is_rtcp

from passthrough.peer import IceSettings, before_gathering, new_peer
from passthrough.stall import StallGuard, guard_video
from passthrough.wiring import publisher_peer

LOOPBACK = IceSettings(hosts=("127.0.0.1",))
CLOSE_WAIT_S = 5.0
PeerFactory = Callable[..., RTCPeerConnection]


async def until(check: Callable[[], Any], what: str, within: float = 20.0) -> Any:
    """Poll until `check()` is truthy (aiortc announces few of the moments tests wait for)."""
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)
    return found


async def close_all(made: list[RTCPeerConnection]) -> None:
    """Close every peer; one whose close hangs (a sender whose RTP loop never says it exited)
    fails the test instead of hanging the run."""
    stuck = []
    for pc in made:
        try:
            await asyncio.wait_for(pc.close(), CLOSE_WAIT_S)
        except TimeoutError:
            stuck.append(pc)
    assert not stuck, f"{len(stuck)} peer connection(s) did not close"


class PatternTrack(VideoStreamTrack):
    """Video whose every frame differs (two noise pictures in turn), so that the encoder spends
    its bitrate on each one, like a camera's picture and unlike aiortc's still green frames."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.size = (width, height)
        blank = av.VideoFrame(width, height, "yuv420p")
        self._pictures = [
            [os.urandom(plane.buffer_size) for plane in blank.planes] for _ in range(2)
        ]
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self.size, "yuv420p")
        for plane, data in zip(frame.planes, self._pictures[self._count % 2], strict=True):
            plane.update(data)
        self._count += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


async def offer_to_publish(ice: IceSettings = LOOPBACK) -> RTCPeerConnection:
    """A publisher with its offer made (every candidate in it)."""
    pc = new_peer(ice)
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def offer_two_layers(
    ice: IceSettings = LOOPBACK,
    high: tuple[int, int] = (320, 240),
    low: tuple[int, int] = (160, 120),
) -> RTCPeerConnection:
    """A publisher of audio and two video tracks, the full picture first and the lighter one
    second (the operator's page sends 640x360-ish and half that), with its offer made. Max-bundle,
    as a browser does (aiortc's default policy loses the second video line once BUNDLE is
    answered; see passthrough.wiring.publisher_peer)."""
    pc = publisher_peer(ice)
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(PatternTrack(*high))
    pc.addTrack(PatternTrack(*low))
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


@dataclass
class Viewer:
    """A receive-only peer that decodes and remembers when each video frame arrived; its video
    receiver is guarded against stalls on a lost packet, as the venue agent's is."""

    pc: RTCPeerConnection
    video_frames: list[tuple[float, int]] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # of each video frame
    audio_frames: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    guard: StallGuard | None = None

    async def frames_after(self, moment: float, count: int, within: float = 10.0) -> float:
        """Wait until `count` video frames arrived after `moment`; answers the first one's time."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            later = [at for at, _ in self.video_frames if at >= moment]
            if len(later) >= count:
                return later[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {count} video frames within {within} s")

    async def close(self) -> None:
        """Close the peer and its readers."""
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task


async def offer_to_view(ice: IceSettings = LOOPBACK) -> Viewer:
    """A viewer with its receive-only offer made."""
    pc = new_peer(ice)
    viewer = Viewer(pc)
    pc.addTransceiver("audio", direction="recvonly")
    video = pc.addTransceiver("video", direction="recvonly")
    viewer.guard, guarding = guard_video([video.receiver])
    viewer.tasks.append(guarding)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        viewer.tasks.append(asyncio.ensure_future(_read(viewer, track)))

    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createOffer())
    return viewer


async def _read(viewer: Viewer, track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            if isinstance(frame, av.VideoFrame):
                viewer.video_frames.append((time.monotonic(), int(frame.pts or 0)))
                viewer.sizes.append((frame.width, frame.height))
            else:
                viewer.audio_frames += 1


def description(body: dict[str, str]) -> RTCSessionDescription:
    """An answer body as a session description."""
    return RTCSessionDescription(sdp=body["sdp"], type=body["type"])


class LossyLink(asyncio.DatagramProtocol):
    """A UDP forwarder on loopback standing between one subscriber and the relay: the relay's
    answer names it instead of the relay (see `lossy_answer`), and RTP from the relay to the
    subscriber is dropped at random with probability `loss` (RTCP, STUN and DTLS always pass),
    and only while `lossy()` holds: a test that makes the link clean when something happens sets
    it, so that no packet sent after that moment is lost however late the test looks."""

    def __init__(self, relay: tuple[str, int]) -> None:
        self.relay = relay
        self.loss = 0.0
        self.lossy: Callable[[], bool] = lambda: True
        # (when, payload type, sequence number, timestamp) of every RTP packet passed on
        self.passed: list[tuple[float, int, int, int]] = []
        self.dropped = 0
        self.forwarded = 0
        self._subscriber: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._random = random.Random(12)
        self._hole: _Hole | None = None

    def hole(
        self,
        payload_type: int,
        rtx_payload_type: int | None,
        count: int,
        *,
        skip: int = 0,
        window_s: float = 2.0,
    ) -> None:
        """Lose `count` consecutive RTP packets of this payload type for good, after letting
        `skip` more of them pass: for window_s after the first is dropped, their resending
        (the same sequence numbers, or anything of the RTX payload type) is dropped too."""
        self._hole = _Hole(payload_type, rtx_payload_type, count, skip, window_s)

    @property
    def hole_seqs(self) -> list[int]:
        """The sequence numbers lost for good so far."""
        return [] if self._hole is None else sorted(self._hole.seqs)

    def _in_hole(self, data: bytes) -> bool:
        hole = self._hole
        if hole is None:
            return False
        payload_type, seq = data[1] & 0x7F, int.from_bytes(data[2:4], "big")
        now = time.monotonic()
        if hole.until is not None and now > hole.until:
            return False
        if payload_type == hole.rtx_payload_type and hole.until is not None:
            return True
        if payload_type != hole.payload_type:
            return False
        if seq in hole.seqs:
            return True
        if hole.skip > 0:
            hole.skip -= 1
            return False
        if len(hole.seqs) < hole.count:
            hole.seqs.add(seq)
            if hole.until is None:
                hole.until = now + hole.window_s
            return True
        return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        if addr != self.relay:
            self._subscriber = addr
            self._transport.sendto(data, self.relay)
            return
        if self._subscriber is None:
            return
        rtp = len(data) > 12 and 128 <= data[0] < 192 and not is_rtcp(data)
        if rtp and self._in_hole(data):
            self.dropped += 1
            return
        if rtp and self.loss and self.lossy() and self._random.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        if rtp:
            header = (
                data[1] & 0x7F,
                int.from_bytes(data[2:4], "big"),
                int.from_bytes(data[4:8], "big"),
            )
            self.passed.append((time.monotonic(), *header))
        self._transport.sendto(data, self._subscriber)

    @property
    def address(self) -> tuple[str, int]:
        """Where the forwarder listens."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    def close(self) -> None:
        """Stop forwarding."""
        if self._transport is not None:
            self._transport.close()


@dataclass
class _Hole:
    payload_type: int
    rtx_payload_type: int | None
    count: int
    skip: int
    window_s: float
    seqs: set[int] = field(default_factory=set)
    until: float | None = None


def payload_types(sdp: str) -> tuple[int, int | None]:
    """The VP8 payload type of an SDP and that of its retransmissions, if any."""
    found = re.search(r"a=rtpmap:(\d+) VP8/90000", sdp)
    assert found is not None
    vp8 = found.group(1)
    rtx = re.search(rf"a=fmtp:(\d+) apt={vp8}\b", sdp)
    return int(vp8), int(rtx.group(1)) if rtx else None


CANDIDATE = re.compile(r"^(a=candidate:\S+ 1 udp \d+ )(127\.0\.0\.1) (\d+)( typ host.*)$", re.M)


async def lossy_answer(answer: RTCSessionDescription) -> tuple[LossyLink, RTCSessionDescription]:
    """Put a LossyLink between the subscriber and the relay: the answer's loopback candidate
    (the relay offers one, bundled) now names the forwarder."""
    found = CANDIDATE.search(answer.sdp)
    assert found is not None, "the relay's answer has no loopback host candidate"
    relay = (found.group(2), int(found.group(3)))
    loop = asyncio.get_running_loop()
    _, link = await loop.create_datagram_endpoint(
        lambda: LossyLink(relay), local_addr=("127.0.0.1", 0)
    )
    host, port = link.address
    sdp = CANDIDATE.sub(lambda m: f"{m.group(1)}{host} {port}{m.group(4)}", answer.sdp)
    return link, RTCSessionDescription(sdp=sdp, type=answer.type)
