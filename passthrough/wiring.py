"""Connecting peers to sources: a publishing peer feeds them, a subscribing peer reads them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from passthrough.fanout import KeyframeRequester, Outlet, Source
from passthrough.hooks import (
    FrameSink,
    SenderLink,
    forward_keyframe_requests,
    media_ssrc,
    send_pli,
    tap_receiver,
)
from passthrough.peer import IceSettings, before_gathering, codec_preferences, negotiated_codecs

log = logging.getLogger(__name__)

KINDS = ("audio", "video")


class NoCommonCodec(Exception):
    """The subscriber cannot receive the codec the publisher sends."""


@dataclass
class Feed:
    """A peer whose received media feeds sources; stop() lets go of them."""

    sources: Mapping[str, Source]
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)
    requesters: dict[str, KeyframeRequester] = field(default_factory=dict)
    active: bool = True  # a stopped feed's frames are dropped, so two publishers never mix

    def connect(self, answer_sdp: str) -> None:
        """After negotiation: tell each source its codec and how to ask for keyframes."""
        codecs = negotiated_codecs(answer_sdp)
        for kind, receiver in self.receivers.items():
            codec = codecs.get(kind)
            if codec is None:
                continue
            requester = _pli_requester(receiver)
            self.requesters[kind] = requester
            self.sources[kind].connect(codec, requester)

    def stop(self) -> None:
        """The peer is gone or replaced: its sources wait for the next publisher."""
        self.active = False
        for kind, requester in self.requesters.items():
            self.sources[kind].disconnect(requester)
        self.requesters.clear()


def tap_peer(pc: RTCPeerConnection, sources: Mapping[str, Source], *, decode: bool) -> Feed:
    """Tap every receiving transceiver of a kind we have a source for (before ICE starts)."""
    feed = Feed(sources)
    for transceiver in pc.getTransceivers():
        source = sources.get(transceiver.kind)
        if source is None or transceiver.kind in feed.receivers:
            continue
        tap_receiver(transceiver.receiver, _sink(source, feed), decode=decode)
        feed.receivers[transceiver.kind] = transceiver.receiver
    return feed


async def accept_publisher(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    sources: Mapping[str, Source],
    ice: IceSettings,
) -> tuple[RTCSessionDescription, Feed]:
    """Answer a publisher's offer; its media feed the sources without being decoded."""
    await pc.setRemoteDescription(offer)
    feed = tap_peer(pc, sources, decode=False)
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createAnswer())
    feed.connect(pc.localDescription.sdp)
    return pc.localDescription, feed


async def answer_subscriber(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    sources: Mapping[str, Source],
    ice: IceSettings,
) -> tuple[RTCSessionDescription, list[Outlet]]:
    """Answer a subscriber's (receive-only) offer with the sources' packets, in their codecs."""
    outlets: dict[RTCRtpTransceiver, Outlet] = {}
    for kind in KINDS:
        source = sources.get(kind)
        if source is None or source.codec is None:
            continue
        preferences = codec_preferences(kind, source.codec)
        if not preferences:
            continue
        transceiver = pc.addTransceiver(kind, direction="sendonly")
        transceiver.setCodecPreferences(preferences)
        link = SenderLink(transceiver.sender)
        link.take_over_rtp()
        forward_keyframe_requests(transceiver.sender, source.request_keyframe)
        outlets[transceiver] = source.attach(link)
    try:
        await pc.setRemoteDescription(offer)
    except Exception as error:
        for outlet in outlets.values():
            outlet.stop()
        raise NoCommonCodec(str(error)) from error
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createAnswer())
    for transceiver, outlet in list(outlets.items()):
        if transceiver.mid is None:  # the offer had no line for this kind
            outlet.stop()
            del outlets[transceiver]
    return pc.localDescription, list(outlets.values())


def _sink(source: Source, feed: Feed) -> FrameSink:
    def take(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if feed.active:
            source.push(codec.name, frame.data, frame.timestamp)

    return take


def _pli_requester(receiver: RTCRtpReceiver) -> KeyframeRequester:
    async def request() -> None:
        ssrc = media_ssrc(receiver)
        if ssrc is not None:
            await send_pli(receiver, ssrc)

    return request
