"""Connecting peers to sources: a publishing peer feeds them, a subscribing peer reads them.
A publisher's second video track feeds a second, lower video layer (source LOW_VIDEO); each
subscriber's one video sender is fed from the layer its own feedback calls for."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiortc import (
    RTCBundlePolicy,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

from passthrough.fanout import KeyframeRequester, Outlet, Source
from passthrough.hooks import (
    FrameSink,
    SenderLink,
    forward_keyframe_requests,
    limit_resends,
    media_ssrc,
    send_pli,
    share_bitrate_estimate,
    tap_receiver,
    watch_feedback,
)
from passthrough.peer import (
    IceSettings,
    before_gathering,
    codec_preferences,
    negotiated_codecs,
    new_peer,
    with_start_bitrate,
)
from passthrough.quality import HIGH, LOW, Layer, QualityRule, QualityState
from passthrough.resend import ResendBudget

log = logging.getLogger(__name__)

KINDS = ("audio", "video")
LOW_VIDEO = "video-low"  # the source of a publisher's second video track
SOURCE_NAMES = (*KINDS, LOW_VIDEO)


class NoCommonCodec(Exception):
    """The subscriber cannot receive the codec the publisher sends."""


@dataclass
class Feed:
    """A peer whose received media feeds sources; stop() lets go of them."""

    sources: Mapping[str, Source]
    receivers: dict[str, RTCRtpReceiver] = field(default_factory=dict)
    requesters: dict[str, KeyframeRequester] = field(default_factory=dict)
    active: bool = True  # a stopped feed's frames are dropped, so two publishers never mix

    mids: dict[str, str | None] = field(default_factory=dict)

    def connect(self, answer_sdp: str) -> None:
        """After negotiation: tell each source its codec and how to ask for keyframes."""
        codecs = negotiated_codecs(answer_sdp)
        by_mid = _codecs_by_mid(answer_sdp)
        for name, receiver in self.receivers.items():
            mid = self.mids.get(name)
            codec = by_mid.get(mid) if mid is not None else codecs.get(self.sources[name].kind)
            if codec is None:
                continue
            requester = _pli_requester(receiver)
            self.requesters[name] = requester
            self.sources[name].connect(codec, requester)

    def stop(self) -> None:
        """The peer is gone or replaced: its sources wait for the next publisher."""
        self.active = False
        for kind, requester in self.requesters.items():
            self.sources[kind].disconnect(requester)
        self.requesters.clear()


def tap_peer(pc: RTCPeerConnection, sources: Mapping[str, Source], *, decode: bool) -> Feed:
    """Tap the first receiving transceiver of each kind we have a source for, and a second video
    one if there is a LOW_VIDEO source (before ICE starts)."""
    feed = Feed(sources)
    for transceiver in pc.getTransceivers():
        name: str = transceiver.kind
        if name in feed.receivers and name == "video":
            name = LOW_VIDEO
        source = sources.get(name)
        if source is None or name in feed.receivers:
            continue
        tap_receiver(transceiver.receiver, _sink(source, feed), decode=decode)
        feed.receivers[name] = transceiver.receiver
        feed.mids[name] = transceiver.mid
    return feed


def publisher_peer(ice: IceSettings) -> RTCPeerConnection:
    """new_peer for a publisher, with every media line on one transport (max-bundle). aiortc's
    default policy ("balanced") loses a second video line when answering a BUNDLE offer: it is
    made on the first video line's transport, which BUNDLE then discards, so the second track's
    receiver never starts."""
    return new_peer(ice, RTCBundlePolicy.MAX_BUNDLE)


async def accept_publisher(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    sources: Mapping[str, Source],
    ice: IceSettings,
) -> tuple[RTCSessionDescription, Feed]:
    """Answer a publisher's offer; its media feed the sources without being decoded. Make `pc`
    with publisher_peer when the publisher may send two video tracks."""
    await pc.setRemoteDescription(offer)
    feed = tap_peer(pc, sources, decode=False)
    layers = [feed.receivers[name] for name in ("video", LOW_VIDEO) if name in feed.receivers]
    if len(layers) > 1:
        share_bitrate_estimate(layers)
    before_gathering(pc, ice)
    await pc.setLocalDescription(await pc.createAnswer())
    for transceiver in pc.getTransceivers():
        for name, receiver in feed.receivers.items():
            if transceiver.receiver is receiver:
                feed.mids[name] = transceiver.mid
    feed.connect(pc.localDescription.sdp)
    answer = RTCSessionDescription(with_start_bitrate(pc.localDescription.sdp), "answer")
    return answer, feed


@dataclass(frozen=True)
class LayerSwitch:
    """A subscriber's video moved to a layer: when it was decided and when the keyframe came."""

    layer: Layer
    decided_at: float
    done_at: float
    reason: str


class LayerChoice:
    """Feeds one subscriber's video outlet from the layer its own feedback (receiver reports and
    REMB for the video we send it) calls for, by the rule of passthrough.quality."""

    def __init__(
        self,
        outlet: Outlet,
        high: Source,
        low: Source,
        state: QualityState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outlet = outlet
        self.layers: dict[Layer, Source] = {HIGH: high, LOW: low}
        self.state = state
        self.switches: list[LayerSwitch] = []
        self.reports = 0
        self.last_loss: float | None = None
        self._clock = clock
        outlet.moved = self._moved

    @property
    def layer(self) -> Layer:
        """The layer the subscriber is being sent now."""
        return LOW if self.outlet.source is self.layers[LOW] else HIGH

    def on_loss(self, fraction_lost: float) -> None:
        """A receiver report about our video."""
        now = self._clock()
        self.reports += 1
        self.last_loss = fraction_lost
        self.state.on_loss(fraction_lost, now)
        self.state.check_up(self.layers[LOW].bitrate_bps, now)
        self.refresh()

    def on_remb(self, bitrate: int) -> None:
        """A REMB about our video."""
        self.state.on_remb(bitrate, self.layers[HIGH].bitrate_bps, self._clock())
        self.refresh()

    def refresh(self) -> None:
        """Move toward the layer the rule wants, if that layer can be sent (a publisher with one
        video track has no low layer: then everyone gets the high one)."""
        wanted = self.layers[self.state.layer]
        if not _usable(wanted, self.layers[HIGH]):
            if not self.layers[HIGH].connected:
                return  # no publisher now: stay, the republish feeds both layers again
            wanted = self.layers[HIGH]
        self.outlet.switch_to(wanted)

    def _moved(self, source: Source) -> None:
        layer = LOW if source is self.layers[LOW] else HIGH
        decided = next((s for s in reversed(self.state.history) if s.layer == layer), None)
        self.switches.append(
            LayerSwitch(
                layer,
                decided.at if decided else self._clock(),
                self._clock(),
                decided.reason if decided else "layer gone",
            )
        )


def _usable(source: Source, high: Source) -> bool:
    return (
        source.connected
        and source.codec is not None
        and high.codec is not None
        and source.codec.mimeType.lower() == high.codec.mimeType.lower()
    )


@dataclass
class Subscription:
    """A subscriber's outlets, and the choice of its video layer when there are two."""

    outlets: list[Outlet]
    choice: LayerChoice | None = None


async def answer_subscriber(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    sources: Mapping[str, Source],
    ice: IceSettings,
) -> tuple[RTCSessionDescription, list[Outlet]]:
    """Answer a subscriber's (receive-only) offer with the sources' packets, in their codecs."""
    answer, subscription = await answer_viewer(pc, offer, sources, ice)
    return answer, subscription.outlets


async def answer_viewer(
    pc: RTCPeerConnection,
    offer: RTCSessionDescription,
    sources: Mapping[str, Source],
    ice: IceSettings,
    rule: QualityRule | None = None,
    state: QualityState | None = None,
) -> tuple[RTCSessionDescription, Subscription]:
    """answer_subscriber, with the layer choice: when there is a LOW_VIDEO source, the video
    outlet follows the subscriber's feedback between the two layers, from `state` (what an
    earlier connection of the same subscriber learnt) when given, else from the high layer.
    Resends of its video are limited (passthrough.resend)."""
    outlets: dict[RTCRtpTransceiver, Outlet] = {}
    choice: LayerChoice | None = None
    low = sources.get(LOW_VIDEO)
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
        outlet = source.attach(link)
        if kind == "video":
            _limit_resends(link)
        if kind == "video" and low is not None:
            choice = LayerChoice(outlet, source, low, state or QualityState(rule or QualityRule()))
            watch_feedback(transceiver.sender, choice.on_loss, choice.on_remb)
            choice.refresh()  # a subscriber known to need the low layer starts on it
        # A PLI from the subscriber goes to whichever layer it is being sent then.
        forward_keyframe_requests(transceiver.sender, _current_source_keyframe(outlet))
        outlets[transceiver] = outlet
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
    if choice is not None and choice.outlet.stopped:
        choice = None
    return pc.localDescription, Subscription(list(outlets.values()), choice)


def _limit_resends(link: SenderLink) -> None:
    budget = ResendBudget()
    limit_resends(
        link.sender, lambda lost: budget.choose(lost, time.monotonic(), link.packets_sent)
    )


def _current_source_keyframe(outlet: Outlet) -> Callable[[], None]:
    def request() -> None:
        (outlet.pending or outlet.source).request_keyframe()

    return request


def _codecs_by_mid(sdp: str) -> dict[str | None, RTCRtpCodecCapability]:
    """The codec chosen for each media line of a local description, by its mid."""
    chosen: dict[str | None, RTCRtpCodecCapability] = {}
    for media in SessionDescription.parse(sdp).media:
        if media.kind in KINDS and media.rtp.codecs:
            codec = media.rtp.codecs[0]
            chosen[media.rtp.muxId] = RTCRtpCodecCapability(
                mimeType=codec.mimeType,
                clockRate=codec.clockRate,
                channels=codec.channels,
                parameters=dict(codec.parameters),
            )
    return chosen


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
