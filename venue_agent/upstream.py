"""One upstream connection: our receive-only offer to the server (or our answer to its media
server's offer), the broadcast decoded (every track drained, so nothing queues up, and every
decoded frame's time told to the reception's video or sound clock), its encoded frames tapped
for the room screen, its counters read for the health samples."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.stats import RTCInboundRtpStreamStats, RTCTransportStats

from passthrough.fanout import Source
from passthrough.peer import IceSettings, before_gathering, negotiated_codecs, new_peer
from passthrough.wiring import Feed, tap_peer
from venue_agent.client import Refused, ServerClient
from venue_agent.health import VIDEO_CLOCK, FrameClock, SoundClock, Totals

log = logging.getLogger(__name__)

KINDS = ("audio", "video")
# The server's 409 codes that say who makes the offer: True when the media server does.
WHO_OFFERS = MappingProxyType({"offer_from_server": True, "offer_from_agent": False})
CLOSED_STATES = frozenset({"failed", "closed"})


def _without_rtx(kind: str) -> list[RTCRtpCodecCapability]:
    # Without RTX a retransmission arrives as the original packet on the media SSRC. With it,
    # aiortc's receiver reports whichever SSRC it saw last under one stats id, and once the
    # RTX stream appears the loss figures would describe retransmissions only.
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    codecs = capabilities.codecs if capabilities is not None else []
    return [codec for codec in codecs if codec.mimeType.lower() != "video/rtx"]


class OfferWay:
    """Who makes the offer on this server: we do (the built-in relay answers), or the media
    server does (Janus, HETANG_MEDIA=janus, and we answer). Learned from the server's 409
    `offer_from_server` / `offer_from_agent`, and remembered for the next subscription."""

    def __init__(self) -> None:
        self.server_offers = False


class Upstream:
    """A live peer connection receiving one session's broadcast."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        feed: Feed | None,
        frames: FrameClock,
        sound: SoundClock,
        video_clock: int = VIDEO_CLOCK,
    ) -> None:
        self.pc = pc
        self.feed = feed
        self.frames, self.sound = frames, sound
        self.video_clock = video_clock  # RTP units per second of the video codec negotiated
        self.offers_audio = False  # whether the server sends sound on this connection
        self.opened_at = time.monotonic()
        self.changed = asyncio.Event()  # the connection's state changed
        self._drains: list[asyncio.Task[None]] = []
        pc.on("connectionstatechange", self.changed.set)

    @classmethod
    async def open(
        cls,
        client: ServerClient,
        session_public_id: str,
        ice: IceSettings,
        sources: Mapping[str, Source] | None,
        frames: FrameClock,
        sound: SoundClock,
        way: OfferWay,
    ) -> Upstream:
        """Subscribe, offering or answering as the server's media engine wants (learned from
        its 409 and remembered in `way`); raises the client's ServerError (or ValueError for an
        unusable description)."""
        try:
            return await cls._open(
                client, session_public_id, ice, sources, frames, sound, way.server_offers
            )
        except Refused as error:
            server_offers = WHO_OFFERS.get(error.code)
            if server_offers is None or server_offers == way.server_offers:
                raise
            way.server_offers = server_offers
        return await cls._open(
            client, session_public_id, ice, sources, frames, sound, way.server_offers
        )

    @classmethod
    async def _open(
        cls,
        client: ServerClient,
        session_public_id: str,
        ice: IceSettings,
        sources: Mapping[str, Source] | None,
        frames: FrameClock,
        sound: SoundClock,
        answering: bool,
    ) -> Upstream:
        pc = new_peer(ice)
        feed: Feed | None = None
        try:
            for kind in KINDS:
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                if kind == "video":
                    transceiver.setCodecPreferences(_without_rtx(kind))
            if answering:
                # The media server's offer takes our transceivers (matched by kind), so the
                # answer leaves RTX out as our own offer does.
                token, offer = await client.subscription_offer(session_public_id)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            if sources is not None:
                feed = tap_peer(pc, sources, decode=True)
            before_gathering(pc, ice)
            if answering:
                await pc.setLocalDescription(await pc.createAnswer())
                negotiated = pc.localDescription.sdp
                await client.subscription_answer(session_public_id, token, negotiated)
            else:
                await pc.setLocalDescription(await pc.createOffer())
                negotiated = await client.subscribe(session_public_id, pc.localDescription.sdp)
                await pc.setRemoteDescription(RTCSessionDescription(sdp=negotiated, type="answer"))
        except BaseException:
            if feed is not None:
                feed.stop()
            await pc.close()
            raise
        if feed is not None:
            feed.connect(negotiated)
        video = negotiated_codecs(negotiated).get("video")
        upstream = cls(pc, feed, frames, sound, video.clockRate if video else VIDEO_CLOCK)
        upstream._start_draining()
        return upstream

    def _start_draining(self) -> None:
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            if track is None:  # the server sends nothing of this kind
                continue
            if transceiver.kind == "video":
                decoded = self.frames.frame
            else:
                self.offers_audio = True
                decoded = self.sound.frame
            self._drains.append(asyncio.create_task(_drain(track, decoded)))

    @property
    def closed(self) -> bool:
        """True once the connection failed or was closed."""
        return self.pc.connectionState in CLOSED_STATES

    def silence(self, now: float) -> float:
        """Seconds without a video frame on this connection."""
        last = self.frames.last_at
        return now - max(self.opened_at, last if last is not None else self.opened_at)

    async def totals(self) -> Totals:
        """The connection's counters now (audio and video together; jitter of the video)."""
        report = await self.pc.getStats()
        received = lost = octets = jitter = 0
        for stats in report.values():
            if isinstance(stats, RTCTransportStats):
                octets += stats.bytesReceived
            elif isinstance(stats, RTCInboundRtpStreamStats):
                received += stats.packetsReceived
                lost += stats.packetsLost
                if stats.kind == "video":
                    jitter = max(jitter, stats.jitter)
        return Totals(octets, received, lost, jitter, self.video_clock)

    async def close(self) -> None:
        """Let go of the sources, close the peer, and wait for the drains to end."""
        if self.feed is not None:
            self.feed.stop()
        await self.pc.close()
        for task in self._drains:
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)


async def _drain(track: MediaStreamTrack, decoded: Callable[[float], None]) -> None:
    """Take every decoded frame (an undrained track grows without bound) and tell its time."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
            decoded(time.monotonic())
