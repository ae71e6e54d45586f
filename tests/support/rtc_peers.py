"""aiortc peers for tests: a publisher of synthetic audio and video, and a decoding subscriber
that counts frames (both on loopback, as the server's ICE settings in tests are)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from passthrough.peer import IceSettings, before_gathering, new_peer

LOOPBACK = IceSettings(hosts=("127.0.0.1",))
CLOSE_WAIT_S = 5.0
PeerFactory = Callable[..., RTCPeerConnection]


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


async def offer_to_publish(ice: IceSettings = LOOPBACK) -> RTCPeerConnection:
    """A publisher with its offer made (every candidate in it)."""
    pc = new_peer(ice)
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


@dataclass
class Viewer:
    """A receive-only peer that decodes and remembers when each video frame arrived."""

    pc: RTCPeerConnection
    video_frames: list[tuple[float, int]] = field(default_factory=list)
    audio_frames: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

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
    pc.addTransceiver("video", direction="recvonly")

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
            if track.kind == "video":
                viewer.video_frames.append((time.monotonic(), int(frame.pts or 0)))
            else:
                viewer.audio_frames += 1


def description(body: dict[str, str]) -> RTCSessionDescription:
    """An answer body as a session description."""
    return RTCSessionDescription(sdp=body["sdp"], type=body["type"])
