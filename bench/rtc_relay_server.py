"""The relay process of the relay benchmark: one publisher and many subscribers signal over a
small local HTTP API; the media go either through the encoded pass-through relay or through
aiortc's MediaRelay (decode once, re-encode per subscriber), the baseline.

    python -m bench.rtc_relay_server --kind passthrough|mediarelay --port PORT --lifetime S
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from bench.rtc_media import ICE, pin_vp8_bitrate
from bench.rtc_procs import commands, run_child, say
from passthrough.fanout import RelayCounters, Source
from passthrough.peer import before_gathering, new_peer
from passthrough.wiring import Feed, accept_publisher, answer_subscriber


class PassThroughRelay:
    """The relay under test: encoded frames from the publisher to every subscriber."""

    def __init__(self) -> None:
        self.counters = RelayCounters()
        self.sources = {"video": Source("video", self.counters)}
        self.peers: list[RTCPeerConnection] = []
        self.feed: Feed | None = None

    async def publish(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the publisher."""
        pc = new_peer(ICE)
        self.peers.append(pc)
        answer, self.feed = await accept_publisher(pc, offer, self.sources, ICE)
        return answer

    async def subscribe(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer one subscriber."""
        if self.sources["video"].codec is None:
            raise web.HTTPConflict(text="no publisher yet")
        pc = new_peer(ICE)
        self.peers.append(pc)
        answer, _ = await answer_subscriber(pc, offer, self.sources, ICE)
        return answer

    def snapshot(self) -> dict[str, Any]:
        """Counters for a mark."""
        return {
            "publisher": self.peers[0].connectionState if self.peers else "none",
            "subscribers": self.sources["video"].subscribers,
            "frames_in": self.sources["video"].frames_in,
            "keyframe_requests": self.counters.keyframe_requests,
            "resyncs": self.counters.resyncs,
        }

    async def close(self) -> None:
        """Stop everything."""
        self.sources["video"].close()
        await asyncio.gather(*(pc.close() for pc in self.peers), return_exceptions=True)


class ReencodingRelay:
    """The baseline: aiortc's MediaRelay; the publisher's track is decoded once and every
    subscriber's sender encodes it again."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.track: MediaStreamTrack | None = None
        self.peers: list[RTCPeerConnection] = []
        self.subscribers = 0
        self.drained = 0
        self._drain: asyncio.Task[None] | None = None

    async def publish(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the publisher; its track is read continuously from now on, with or without
        subscribers, so no decoded frames pile up before the first one joins."""
        pc = new_peer(ICE)
        self.peers.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.track = track
            self._drain = asyncio.ensure_future(self._read(self.relay.subscribe(track, False)))

        await pc.setRemoteDescription(offer)
        before_gathering(pc, ICE)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.drained += 1

    async def subscribe(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer one subscriber with its own re-encoding proxy of the publisher's track."""
        if self.track is None:
            raise web.HTTPConflict(text="no publisher yet")
        pc = new_peer(ICE)
        self.peers.append(pc)
        await pc.setRemoteDescription(offer)
        pc.addTrack(self.relay.subscribe(self.track, buffered=False))
        self.subscribers += 1
        before_gathering(pc, ICE)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    def snapshot(self) -> dict[str, Any]:
        """Counters for a mark."""
        return {
            "publisher": self.peers[0].connectionState if self.peers else "none",
            "subscribers": self.subscribers,
            "frames_in": self.drained,
        }

    async def close(self) -> None:
        """Stop everything."""
        if self._drain is not None:
            self._drain.cancel()
        await asyncio.gather(*(pc.close() for pc in self.peers), return_exceptions=True)


Relay = PassThroughRelay | ReencodingRelay


def create_app(relay: Relay) -> web.Application:
    """POST /publish and POST /subscribe: an SDP offer in, the answer out (JSON)."""

    async def exchange(request: web.Request) -> web.Response:
        body = await request.json()
        offer = RTCSessionDescription(sdp=body["sdp"], type=body["type"])
        if request.path == "/publish":
            answer = await relay.publish(offer)
        else:
            answer = await relay.subscribe(offer)
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    app = web.Application()
    app.router.add_post("/publish", exchange)
    app.router.add_post("/subscribe", exchange)
    return app


async def serve(kind: str, port: int) -> None:
    """Relay until told to quit; answer marks with the relay's counters."""
    pin_vp8_bitrate()  # the baseline's re-encoders send what the publisher sends
    relay: Relay = PassThroughRelay() if kind == "passthrough" else ReencodingRelay()
    runner = web.AppRunner(create_app(relay), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        say("ready")
        async for command in commands():
            if command == "mark":
                say("mark", t=time.monotonic(), **relay.snapshot())
    finally:
        await relay.close()
        await runner.cleanup()


def main() -> None:
    """Parse the arguments and relay."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("passthrough", "mediarelay"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    run_child(lambda: serve(args.kind, args.port), args.lifetime)


if __name__ == "__main__":
    main()
