"""The relay process of the relay benchmark: one publisher and many subscribers signal over a
small local HTTP API; the media go either through the encoded pass-through relay, through
aiortc's MediaRelay (decode once, re-encode per subscriber), the baseline, or through a Janus
VideoRoom (--kind janus: this process signals; Janus offers, subscribers answer).

    python -m bench.rtc_relay_server --kind passthrough|mediarelay|janus [--layers 2] --port PORT
        --lifetime S [--record FILE.webm] [--janus-url URL]

With --layers 2 the publisher sends two video tracks (the full and the lighter picture) and the
pass-through relay feeds every other subscriber from the lighter one (each subscriber's layer
is pinned: the layer choice machinery runs, its rule never moves anyone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from bench.rtc_media import ICE, pin_vp8_bitrate
from bench.rtc_procs import commands, run_child, say
from passthrough.fanout import RelayCounters, Source
from passthrough.peer import before_gathering, new_peer
from passthrough.quality import LOW, QualityRule
from passthrough.recorder import Recorder
from passthrough.wiring import LOW_VIDEO, Feed, accept_publisher, answer_viewer, publisher_peer
from server.rtc import videoroom
from server.rtc.janus import JanusHandle, JanusSession, Jsep

# Rules that never move a subscriber: no loss is "above" 200 %, no REMB is under 0, and the
# clean spell before going up never ends.
STAY = QualityRule(loss_down=2.0, remb_need=0.0, clean_s=float("inf"), clean_max_s=float("inf"))


class PassThroughRelay:
    """The relay under test: encoded frames from the publisher to every subscriber."""

    def __init__(self, layers: int = 1, record: Path | None = None) -> None:
        self.counters = RelayCounters()
        self.sources = {"video": Source("video", self.counters)}
        if layers == 2:
            self.sources[LOW_VIDEO] = Source("video", self.counters)
        self.recorder: Recorder | None = None
        self.recording_cpu_s = 0.0  # CPU time spent inside the recorder
        if record is not None:  # as the server records a broadcast (server/rtc/broadcasts.py)
            video = self.sources["video"]
            self.recorder = Recorder(record, video.request_keyframe)
            video.taps.append(self._record)
        self.peers: list[RTCPeerConnection] = []
        self.feed: Feed | None = None
        self.joined = 0

    def _record(self, codec_name: str, data: bytes, pts: int, keyframe: bool) -> None:
        assert self.recorder is not None
        began = time.thread_time()
        self.recorder.take("video", codec_name, data, pts, keyframe)
        self.recording_cpu_s += time.thread_time() - began

    async def publish(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the publisher."""
        pc = publisher_peer(ICE)
        self.peers.append(pc)
        answer, self.feed = await accept_publisher(pc, offer, self.sources, ICE)
        return answer

    async def subscribe(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer one subscriber; with two layers, every other one gets the lighter picture."""
        if self.sources["video"].codec is None:
            raise web.HTTPConflict(text="no publisher yet")
        pc = new_peer(ICE)
        self.peers.append(pc)
        answer, subscription = await answer_viewer(pc, offer, self.sources, ICE, STAY)
        choice = subscription.choice
        if choice is not None and self.joined % 2 == 1:
            choice.state.layer = LOW
            choice.refresh()
        self.joined += 1
        return answer

    def snapshot(self) -> dict[str, Any]:
        """Counters for a mark."""
        low = self.sources.get(LOW_VIDEO)
        return {
            "publisher": self.peers[0].connectionState if self.peers else "none",
            "subscribers": self.sources["video"].subscribers,
            "frames_in": self.sources["video"].frames_in,
            "low_subscribers": low.subscribers if low else 0,
            "low_frames_in": low.frames_in if low else 0,
            "keyframe_requests": self.counters.keyframe_requests,
            "resyncs": self.counters.resyncs,
            "recording_cpu_s": self.recording_cpu_s,
        }

    async def close(self) -> None:
        """Stop everything."""
        for source in self.sources.values():
            source.close()
        if self.recorder is not None:
            self.recorder.close()
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


class JanusBench:
    """Janus (a VideoRoom on a real Janus process, which the benchmark measures): this process
    only signals, as our server does with HETANG_MEDIA=janus; Janus offers to subscribers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.session: JanusSession | None = None
        self.feed = 0
        self.up = asyncio.Event()
        self.offered: dict[str, JanusHandle] = {}
        self.subscribers = 0
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession()
        self.session = await JanusSession.create(self.http, self.url)
        await videoroom.create_room(await self.session.attach(), JANUS_ROOM, bitrate_bps=2_000_000)

    async def publish(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        assert self.session is not None
        handle = await self.session.attach()
        published = await videoroom.publish(
            handle, JANUS_ROOM, "bench", Jsep(offer.type, offer.sdp)
        )
        self.feed = published.feed

        async def connected() -> None:
            await handle.wait_for("webrtcup", within_s=30)
            self.up.set()

        self._watch = asyncio.create_task(connected())
        return RTCSessionDescription(sdp=published.answer.sdp, type=published.answer.type)

    async def offer(self) -> tuple[str, RTCSessionDescription]:
        """Janus's offer to one more subscriber, and the token its answer names."""
        assert self.session is not None
        await asyncio.wait_for(self.up.wait(), 30)
        handle = await self.session.attach()
        jsep = await videoroom.subscribe(handle, JANUS_ROOM, self.feed)
        self.offered[str(handle.id)] = handle
        return str(handle.id), RTCSessionDescription(sdp=jsep.sdp, type=jsep.type)

    async def answer(self, token: str, answer: RTCSessionDescription) -> None:
        await videoroom.start(self.offered.pop(token), Jsep(answer.type, answer.sdp))
        self.subscribers += 1

    def snapshot(self) -> dict[str, Any]:
        """Counters for a mark (Janus's own frame counts are not read: frames_in stays 0)."""
        return {
            "publisher": "connected" if self.up.is_set() else "new",
            "subscribers": self.subscribers,
            "frames_in": 0,
        }

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.destroy()
        if self.http is not None:
            await self.http.close()


Relay = PassThroughRelay | ReencodingRelay | JanusBench
JANUS_ROOM = 4711


def create_app(relay: Relay) -> web.Application:
    """POST /publish and POST /subscribe: an SDP offer in, the answer out (JSON)."""

    async def exchange(request: web.Request) -> web.Response:
        body = await request.json()
        offer = RTCSessionDescription(sdp=body["sdp"], type=body["type"])
        if request.path == "/publish":
            answer = await relay.publish(offer)
        elif isinstance(relay, JanusBench):
            raise web.HTTPConflict(text="Janus offers: POST /subscribe/offer")
        else:
            answer = await relay.subscribe(offer)
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    async def janus_offer(request: web.Request) -> web.Response:
        assert isinstance(relay, JanusBench)
        token, offer = await relay.offer()
        return web.json_response({"token": token, "sdp": offer.sdp, "type": offer.type})

    async def janus_answer(request: web.Request) -> web.Response:
        assert isinstance(relay, JanusBench)
        body = await request.json()
        answer = RTCSessionDescription(sdp=body["sdp"], type=body["type"])
        await relay.answer(str(body["token"]), answer)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/publish", exchange)
    app.router.add_post("/subscribe", exchange)
    app.router.add_post("/subscribe/offer", janus_offer)
    app.router.add_post("/subscribe/answer", janus_answer)
    return app


async def serve(
    kind: str, port: int, layers: int, record: Path | None, janus_url: str | None
) -> None:
    """Relay until told to quit; answer marks with the relay's counters."""
    pin_vp8_bitrate()  # the baseline's re-encoders send what the publisher sends
    relay: Relay
    if kind == "janus":
        assert janus_url is not None, "--kind janus needs --janus-url"
        relay = JanusBench(janus_url)
        await relay.start()
    else:
        relay = PassThroughRelay(layers, record) if kind == "passthrough" else ReencodingRelay()
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
    parser.add_argument("--kind", choices=("passthrough", "mediarelay", "janus"), required=True)
    parser.add_argument("--janus-url", help="with --kind janus: the Janus HTTP API to signal to")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--layers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--record", type=Path, help="record the broadcast into this WebM file")
    args = parser.parse_args()
    run_child(
        lambda: serve(args.kind, args.port, args.layers, args.record, args.janus_url),
        args.lifetime,
    )


if __name__ == "__main__":
    main()
