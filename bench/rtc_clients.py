"""The load of the relay benchmark: a publisher sending the synthetic camera, and processes of
subscribers, some decoding every frame (what a venue's screen does), the rest "light" (they
never decode, so one process can hold many; see Viewer).

    python -m bench.rtc_clients publisher --url URL [--follow-remb] [--layers 2] --lifetime S
    python -m bench.rtc_clients subscribers --url URL --light L --decode D --lifetime S
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.rtc_media import (
    ICE,
    LOW_HEIGHT,
    LOW_WIDTH,
    FrameCounter,
    PacketCounter,
    SyntheticCamera,
    pin_layer_bitrates,
    pin_vp8_bitrate,
)
from bench.rtc_procs import commands, run_child, say
from passthrough.peer import before_gathering, new_peer
from passthrough.wiring import publisher_peer, tap_peer


async def negotiate(http: aiohttp.ClientSession, path: str, pc: RTCPeerConnection) -> None:
    """Offer, take the relay's answer, and wait until ICE and DTLS are up."""
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected":
            connected.set()

    before_gathering(pc, ICE)
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription
    async with http.post(path, json={"sdp": offer.sdp, "type": offer.type}) as response:
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {await response.text()}")
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    await connected.wait()


async def answer_offer(http: aiohttp.ClientSession, pc: RTCPeerConnection) -> None:
    """Janus's way: take the media server's offer, answer it, wait until ICE and DTLS are up."""
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected":
            connected.set()

    async with http.post("/subscribe/offer") as response:
        if response.status != 200:
            raise RuntimeError(f"/subscribe/offer: {response.status} {await response.text()}")
        offer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    before_gathering(pc, ICE)
    await pc.setLocalDescription(await pc.createAnswer())
    answer = {"sdp": pc.localDescription.sdp, "type": "answer", "token": offer["token"]}
    async with http.post("/subscribe/answer", json=answer) as response:
        if response.status != 200:
            raise RuntimeError(f"/subscribe/answer: {response.status} {await response.text()}")
    await connected.wait()


async def publish(url: str, follow_remb: bool, layers: int) -> None:
    """Send the camera to the relay until told to quit; with two layers, also its lighter
    picture (320x180 at 250 kbit/s) as a second video track, as the operator's page does."""
    camera = SyntheticCamera()
    if layers == 2:
        pin_layer_bitrates(follow_remb=follow_remb)
        pc = publisher_peer(ICE)  # max-bundle, as a browser
        pc.addTransceiver(camera, direction="sendonly")
        pc.addTransceiver(SyntheticCamera(LOW_WIDTH, LOW_HEIGHT), direction="sendonly")
    else:
        pin_vp8_bitrate(follow_remb=follow_remb)
        pc = new_peer(ICE)
        pc.addTransceiver(camera, direction="sendonly")
    try:
        async with aiohttp.ClientSession(url) as http, asyncio.timeout(20):
            await negotiate(http, "/publish", pc)
        say("ready")
        async for command in commands():
            if command == "mark":
                stats = [s for s in (await pc.getStats()).values() if s.type == "outbound-rtp"]
                sent_bytes = sum(s.bytesSent for s in stats)
                say(
                    "mark",
                    t=time.monotonic(),
                    sent=camera.sent,
                    sent_bytes=sent_bytes,
                    state=pc.connectionState,
                )
    finally:
        await pc.close()


@dataclass
class Viewer:
    """One subscriber: its peer, a counter of the frames it receives and, when it decodes,
    the decoded frames. Modes: "decode" (every frame decoded, like a venue's screen), "tap"
    (frames reassembled by aiortc's receiver, never decoded), "count" (RTP packets counted at
    the socket: the cheapest, so one load process can hold many)."""

    mode: str
    pc: RTCPeerConnection = field(default_factory=lambda: new_peer(ICE))
    counter: FrameCounter | PacketCounter = field(default_factory=FrameCounter)
    joined_at: float = 0.0
    decoded: int = 0
    first_decoded_at: float | None = None
    size: str = ""
    connected: bool = False
    task: asyncio.Task[None] | None = None

    async def join(self, http: aiohttp.ClientSession, answering: bool = False) -> None:
        """Subscribe (answering the media server's offer, for Janus); a decoding viewer starts
        its decoding loop as the track arrives."""
        self.pc.addTransceiver("video", direction="recvonly")
        if isinstance(self.counter, FrameCounter):
            tap_peer(self.pc, {"video": self.counter}, decode=self.decodes)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if self.decodes:
                self.task = asyncio.ensure_future(self._decode(track))

        self.joined_at = time.monotonic()
        if answering:
            await answer_offer(http, self.pc)
        else:
            await negotiate(http, "/subscribe", self.pc)
        if isinstance(self.counter, PacketCounter):
            self.counter.install(self.pc)
        self.connected = True

    @property
    def decodes(self) -> bool:
        """Whether it decodes every frame."""
        return self.mode == "decode"

    async def _decode(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if self.first_decoded_at is None:
                    self.first_decoded_at = time.monotonic()
                    if isinstance(frame, av.VideoFrame):
                        self.size = f"{frame.width}x{frame.height}"
                self.decoded += 1

    def first_frame_s(self) -> float | None:
        """Seconds from starting to subscribe to the first decoded frame."""
        if self.first_decoded_at is None:
            return None
        return self.first_decoded_at - self.joined_at


async def watch(
    url: str,
    light: int,
    light_mode: str,
    decode: int,
    concurrency: int,
    patience_s: float,
    answering: bool,
) -> None:
    """Join `light` light viewers and `decode` decoding ones, a few at a time (a crowd joining
    at once only measures DTLS handshakes), then report counts at every mark."""
    viewers = [Viewer("decode") for _ in range(decode)]
    for _ in range(light):
        counter = PacketCounter() if light_mode == "count" else FrameCounter()
        viewers.append(Viewer(light_mode, counter=counter))
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def join(viewer: Viewer) -> None:
        async with gate:
            try:
                async with asyncio.timeout(patience_s):
                    await viewer.join(http, answering)
            except Exception as error:
                failures.append(repr(error))

    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(url) as http:
            await asyncio.gather(*(join(viewer) for viewer in viewers))
        say(
            "ready",
            connected=sum(v.connected for v in viewers),
            failed=len(failures),
            errors=sorted(set(failures))[:3],
            join_s=time.monotonic() - started,
        )
        async for command in commands():
            if command == "mark":
                say("mark", t=time.monotonic(), **snapshot(viewers))
    finally:
        for viewer in viewers:
            if viewer.task is not None:
                viewer.task.cancel()
        await asyncio.gather(*(v.pc.close() for v in viewers), return_exceptions=True)


def snapshot(viewers: list[Viewer]) -> dict[str, Any]:
    """Counts for a mark: frames and bytes received per viewer, frames decoded per decoding
    viewer, and each decoding viewer's time to its first frame."""
    decoding = [v for v in viewers if v.decodes]
    return {
        "frames": [v.counter.frames_in for v in viewers],
        "bytes": [v.counter.bytes_in for v in viewers],
        "decodes": [v.decodes for v in viewers],
        "decoded": [v.decoded for v in decoding],
        "first_frame_s": [v.first_frame_s() for v in decoding],
        "sizes": sorted({v.size for v in decoding if v.size}),
    }


def main() -> None:
    """Parse the arguments and run the publisher or a process of subscribers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("publisher", "subscribers"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--light", type=int, default=0)
    parser.add_argument("--light-mode", choices=("count", "tap"), default="count")
    parser.add_argument("--decode", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--join-timeout", type=float, default=30)
    parser.add_argument("--follow-remb", action="store_true")
    parser.add_argument("--layers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--answering", action="store_true", help="answer Janus's offers")
    args = parser.parse_args()
    if args.role == "publisher":
        run_child(lambda: publish(args.url, args.follow_remb, args.layers), args.lifetime)
    else:
        run_child(
            lambda: watch(
                args.url,
                args.light,
                args.light_mode,
                args.decode,
                args.concurrency,
                args.join_timeout,
                args.answering,
            ),
            args.lifetime,
        )


if __name__ == "__main__":
    main()
