"""Each private aiortc/aioice hook in passthrough/hooks.py (and new_peer's ICE defaults), exercised
against the real, pinned aiortc on loopback, so that an incompatible upgrade fails here, loudly."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, VideoStreamTrack
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from passthrough.fanout import RelayCounters, SharedPacketizer, Source
from passthrough.frames import is_keyframe
from passthrough.hooks import (
    HookMissing,
    forward_keyframe_requests,
    media_ssrc,
    restrict_host_addresses,
    send_pli,
    share_packetizer,
    tap_receiver,
)
from passthrough.peer import IceSettings, before_gathering, new_peer
from passthrough.wiring import accept_publisher, answer_subscriber

LOOPBACK = IceSettings(hosts=("127.0.0.1",))
VP8 = RTCRtpCodecCapability(mimeType="video/VP8", clockRate=90000)
WAIT_S = 5.0  # generous: a hook that works answers in well under a second on loopback
RTP_PAYLOAD_MAX = 1300  # bytes; a frame larger than this arrived in several RTP packets

PeerFactory = Callable[..., RTCPeerConnection]


class NoiseTrack(VideoStreamTrack):
    """The same frame of noise at 30 fps: keyframes span many RTP packets, delta frames are tiny.
    aiortc's VP8 encoder makes no keyframe of its own for the first seconds (its GOP is 100 s; it
    restarts, with a keyframe, when the bitrate estimate moves by more than 10%)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.running = asyncio.Event()
        self.running.set()
        self.size = (width, height)
        image = av.VideoFrame(width, height, "yuv420p")
        self._planes = [os.urandom(plane.buffer_size) for plane in image.planes]

    async def recv(self) -> av.VideoFrame:
        await self.running.wait()
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(*self.size, "yuv420p")
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Tap:
    """A sink for tap_receiver that keeps every encoded frame and wakes whoever waits for more."""

    def __init__(self) -> None:
        self.frames: list[tuple[RTCRtpCodecParameters, JitterFrame]] = []
        self._changed = asyncio.Event()

    def __call__(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.frames.append((codec, frame))
        self._changed.set()

    @property
    def keyframes(self) -> list[bool]:
        return [is_keyframe(codec.name, frame.data) for codec, frame in self.frames]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def peers() -> AsyncIterator[PeerFactory]:
    """Makes peer connections (loopback-only unless told otherwise) and closes them all."""
    made: list[RTCPeerConnection] = []

    def make(ice: IceSettings = LOOPBACK) -> RTCPeerConnection:
        pc = new_peer(ice)
        made.append(pc)
        return pc

    try:
        yield make
    finally:
        for pc in made:
            await pc.close()


async def negotiate(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    before_answer: Callable[[], None] = lambda: None,
) -> None:
    """Offer/answer on loopback; `before_answer` runs once the answerer's transceivers exist."""
    before_gathering(offerer, LOOPBACK)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    before_answer()
    before_gathering(answerer, LOOPBACK)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def tapped_publisher(peers: PeerFactory, track: NoiseTrack) -> tuple[RTCRtpReceiver, Tap]:
    """A publisher sending `track` to a relay peer whose receiver is tapped without decoding."""
    publisher, relay = peers(), peers()
    publisher.addTrack(track)
    tap = Tap()

    def tap_video() -> None:
        tap_receiver(relay.getTransceivers()[0].receiver, tap, decode=False)

    await negotiate(publisher, relay, tap_video)
    return relay.getTransceivers()[0].receiver, tap


@pytest.mark.parametrize("decode", [True, False], ids=["decode", "no-decode"])
async def test_tap_receiver_hands_over_whole_encoded_frames(
    peers: PeerFactory, decode: bool
) -> None:
    publisher, relay = peers(), peers()
    publisher.addTrack(NoiseTrack())
    tap = Tap()

    def tap_video() -> None:
        tap_receiver(relay.getTransceivers()[0].receiver, tap, decode=decode)

    await negotiate(publisher, relay, tap_video)
    receiver = relay.getTransceivers()[0].receiver
    await tap.wait_for(lambda: len(tap.frames) >= 10)

    codec, first = tap.frames[0]
    assert codec.mimeType == "video/VP8"
    # A whole frame, reassembled from several RTP packets: a fresh decoder decodes it alone.
    assert len(first.data) > RTP_PAYLOAD_MAX
    assert tap.keyframes[:10] == [True] + [False] * 9
    decoded = av.CodecContext.create("vp8", "r").decode(av.Packet(first.data))
    assert [(frame.width, frame.height) for frame in decoded] == [(320, 240)]
    timestamps = [frame.timestamp for _, frame in tap.frames]
    assert timestamps[0] == 0
    # On the 90 kHz RTP clock, rebased to 0 (aiortc's rounding leaves ±1).
    assert all(abs(b - a - 3000) <= 1 for a, b in itertools.pairwise(timestamps[:10]))

    with pytest.raises(HookMissing, match="started"):
        tap_receiver(receiver, tap, decode=decode)

    if decode:
        frame = await asyncio.wait_for(receiver.track.recv(), WAIT_S)
        assert isinstance(frame, av.VideoFrame)
        assert (frame.width, frame.height) == (320, 240)
    else:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receiver.track.recv(), 0.5)
        assert len(tap.frames) > 10  # still flowing to the tap meanwhile
    await relay.close()
    with pytest.raises(MediaStreamError):
        while True:  # decoded frames still queued, then the end
            await asyncio.wait_for(receiver.track.recv(), WAIT_S)


async def test_forward_keyframe_requests_hands_a_subscribers_pli_to_the_callback(
    peers: PeerFactory,
) -> None:
    relay, subscriber = peers(), peers()
    sender = relay.addTrack(VideoStreamTrack())
    requested = asyncio.Event()
    forward_keyframe_requests(sender, requested.set)
    await negotiate(relay, subscriber)
    receiver = subscriber.getTransceivers()[0].receiver
    await asyncio.wait_for(receiver.track.recv(), WAIT_S)  # connected: RTCP can come back
    assert not requested.is_set()

    # The PLI the subscriber's receiver sends on picture loss, over the real RTCP path.
    await receiver._send_rtcp_pli(sender._ssrc)
    await asyncio.wait_for(requested.wait(), WAIT_S)
    assert sender._RTCRtpSender__force_keyframe is False  # type: ignore[attr-defined]
    requested.clear()
    await receiver._send_rtcp_pli(sender._ssrc)  # and every time, not just once
    await asyncio.wait_for(requested.wait(), WAIT_S)


async def test_media_ssrc_is_the_media_stream_never_the_rtx_one(peers: PeerFactory) -> None:
    publisher, relay = peers(), peers()
    track = NoiseTrack()
    sender = publisher.addTrack(track)
    await negotiate(publisher, relay)
    receiver = relay.getTransceivers()[0].receiver
    group = re.search(r"a=ssrc-group:FID (\d+) (\d+)", publisher.localDescription.sdp)
    assert group is not None, "aiortc no longer offers RTX"
    media, rtx = int(group[1]), int(group[2])
    assert (media, rtx) == (sender._ssrc, sender._rtx_ssrc)
    assert media_ssrc(receiver) is None  # nothing received yet

    await asyncio.wait_for(receiver.track.recv(), WAIT_S)
    assert media_ssrc(receiver) == media

    # Stop the media, then have one packet retransmitted: the RTX stream becomes the newest.
    track.running.clear()
    await asyncio.sleep(0.2)
    history = sender._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
    lost = next(iter(history.values())).sequence_number
    await receiver._send_rtcp_nack(media, [lost])
    async with asyncio.timeout(WAIT_S):
        # aiortc tells nobody when a new SSRC shows up: look again and again.
        while rtx not in {s.source for s in receiver.getSynchronizationSources()}:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    newest = max(receiver.getSynchronizationSources(), key=lambda s: s.timestamp)
    assert newest.source == rtx
    assert media_ssrc(receiver) == media


async def test_send_pli_makes_the_publisher_send_a_keyframe(peers: PeerFactory) -> None:
    receiver, tap = await tapped_publisher(peers, NoiseTrack())
    await tap.wait_for(lambda: len(tap.frames) >= 15)
    assert tap.keyframes[:15] == [True] + [False] * 14
    asked_at = len(tap.frames)
    ssrc = media_ssrc(receiver)
    assert ssrc is not None

    await send_pli(receiver, ssrc)
    # The very next frames: aiortc's encoder also restarts with a keyframe on its own when the
    # bitrate estimate moves (after ~3 s on loopback), which must not pass for the answer.
    await tap.wait_for(lambda: len(tap.frames) >= asked_at + 10)
    assert any(tap.keyframes[asked_at : asked_at + 10])


async def test_restrict_host_addresses_offers_only_loopback(peers: PeerFactory) -> None:
    def candidates(sdp: str) -> set[tuple[str, str]]:
        return set(re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\S+)", sdp))

    restricted = peers(IceSettings())
    restricted.addTransceiver("video")
    restricted.addTransceiver("audio")
    restrict_host_addresses(restricted, ["127.0.0.1"])
    await restricted.setLocalDescription(await restricted.createOffer())
    assert candidates(restricted.localDescription.sdp) == {("127.0.0.1", "host")}

    # Why the hook exists: left alone, aioice never offers loopback.
    automatic = peers(IceSettings())
    automatic.addTransceiver("video")
    await automatic.setLocalDescription(await automatic.createOffer())
    assert "127.0.0.1" not in {host for host, _ in candidates(automatic.localDescription.sdp)}


def ice_connection(pc: RTCPeerConnection) -> Any:
    """The aioice connection behind a peer's first transceiver."""
    return pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection


async def test_new_peer_asks_no_stun_server_unless_configured(peers: PeerFactory) -> None:
    quiet = peers(IceSettings())
    quiet.addTransceiver("video")
    assert ice_connection(quiet).stun_server is None
    assert ice_connection(quiet).turn_server is None
    await quiet.setLocalDescription(await quiet.createOffer())
    assert "typ srflx" not in quiet.localDescription.sdp
    assert "typ relay" not in quiet.localDescription.sdp

    configured = peers(
        IceSettings(
            servers=("stun:stun.example.net:3478", "turn:turn.example.net:3479"),
            username="relay",
            credential="secret",
        )
    )
    configured.addTransceiver("video")
    connection = ice_connection(configured)
    assert connection.stun_server == ("stun.example.net", 3478)
    assert connection.turn_server == ("turn.example.net", 3479)
    assert (connection.turn_username, connection.turn_password) == ("relay", "secret")

    # Why new_peer exists: aiortc's own default asks a public STUN server.
    default = RTCPeerConnection()
    try:
        default.addTransceiver("video")
        assert ice_connection(default).stun_server == ("stun.l.google.com", 19302)
    finally:
        await default.close()


def _ignore(codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
    pass


def _without(target: object, name: str) -> object:
    delattr(target, name)
    return target


def _receiver_lacking(pc: RTCPeerConnection, name: str) -> Any:
    return _without(pc.addTransceiver("video").receiver, name)


async def _tap_no_queue(pc: RTCPeerConnection) -> None:
    receiver = _receiver_lacking(pc, "_RTCRtpReceiver__decoder_queue")
    tap_receiver(receiver, _ignore, decode=False)


async def _tap_no_thread(pc: RTCPeerConnection) -> None:
    receiver = _receiver_lacking(pc, "_RTCRtpReceiver__decoder_thread")
    tap_receiver(receiver, _ignore, decode=False)


async def _forward_no_keyframe_method(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    sender._send_keyframe = None  # type: ignore[assignment,method-assign]
    forward_keyframe_requests(sender, lambda: None)


async def _media_ssrc_no_rtx_map(pc: RTCPeerConnection) -> None:
    media_ssrc(_receiver_lacking(pc, "_RTCRtpReceiver__rtx_ssrc"))


async def _send_pli_no_method(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    receiver._send_rtcp_pli = None  # type: ignore[assignment,method-assign]
    await send_pli(receiver, 1234)


async def _restrict_no_connection(pc: RTCPeerConnection) -> None:
    pc.addTransceiver("video")
    _without(pc.getTransceivers()[0].receiver.transport.transport.iceGatherer, "_connection")
    restrict_host_addresses(pc, ["127.0.0.1"])


async def _restrict_no_gathering_flag(pc: RTCPeerConnection) -> None:
    pc.addTransceiver("video")
    _without(ice_connection(pc), "_local_candidates_start")
    restrict_host_addresses(pc, ["127.0.0.1"])


async def _tap_plain_object(pc: RTCPeerConnection) -> None:
    tap_receiver(object(), _ignore, decode=True)  # type: ignore[arg-type]


async def _forward_plain_object(pc: RTCPeerConnection) -> None:
    forward_keyframe_requests(object(), lambda: None)  # type: ignore[arg-type]


async def _media_ssrc_plain_object(pc: RTCPeerConnection) -> None:
    media_ssrc(object())  # type: ignore[arg-type]


async def _send_pli_plain_object(pc: RTCPeerConnection) -> None:
    await send_pli(object(), 1234)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "use_hook",
    [
        _tap_plain_object,
        _tap_no_queue,
        _tap_no_thread,
        _forward_plain_object,
        _forward_no_keyframe_method,
        _media_ssrc_plain_object,
        _media_ssrc_no_rtx_map,
        _send_pli_plain_object,
        _send_pli_no_method,
        _restrict_no_connection,
        _restrict_no_gathering_flag,
    ],
    ids=lambda use_hook: use_hook.__name__.strip("_"),
)
async def test_each_hook_raises_hook_missing_when_aiortc_changed(
    peers: PeerFactory, use_hook: Callable[[RTCPeerConnection], Awaitable[None]]
) -> None:
    with pytest.raises(HookMissing):
        await use_hook(peers())


async def _share_plain_object(pc: RTCPeerConnection) -> None:
    share_packetizer(object(), SharedPacketizer(VP8))  # type: ignore[arg-type]


async def _share_started_sender(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    sender._RTCRtpSender__encoder = object()  # type: ignore[attr-defined]  # as once it runs
    share_packetizer(sender, SharedPacketizer(VP8))


@pytest.mark.parametrize("use_hook", [_share_plain_object, _share_started_sender])
async def test_share_packetizer_raises_hook_missing_when_aiortc_changed(
    peers: PeerFactory, use_hook: Callable[[RTCPeerConnection], Awaitable[None]]
) -> None:
    with pytest.raises(HookMissing):
        await use_hook(peers())


class CountingPacker:
    """A VP8 packer that counts how often it really packs."""

    def __init__(self) -> None:
        self.encoder = Vp8Encoder()
        self.calls = 0

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        self.calls += 1
        return self.encoder.pack(packet)


async def test_share_packetizer_packs_each_frame_once_for_every_subscriber(
    peers: PeerFactory,
) -> None:
    """Two subscribers' senders share one packetizer: both decode, and each frame was split into
    RTP payloads once, not once per subscriber."""
    publisher, relay_in = peers(), peers()
    publisher.addTrack(VideoStreamTrack())
    sources = {"video": Source("video", RelayCounters())}
    before_gathering(publisher, LOOPBACK)
    await publisher.setLocalDescription(await publisher.createOffer())
    answer, _ = await accept_publisher(relay_in, publisher.localDescription, sources, LOOPBACK)
    await publisher.setRemoteDescription(answer)
    shared = sources["video"].packetizer
    assert shared is not None
    counting = CountingPacker()
    shared._encoder = counting  # type: ignore[assignment]
    receivers = []
    for _ in range(2):
        viewer, relay_out = peers(), peers()
        viewer.addTransceiver("video", direction="recvonly")
        before_gathering(viewer, LOOPBACK)
        await viewer.setLocalDescription(await viewer.createOffer())
        answer, _ = await answer_subscriber(relay_out, viewer.localDescription, sources, LOOPBACK)
        await viewer.setRemoteDescription(answer)
        receivers.append(viewer.getTransceivers()[0].receiver)
    for receiver in receivers:
        for _ in range(10):
            await asyncio.wait_for(receiver.track.recv(), WAIT_S)
    pushed = sources["video"].frames_in
    assert 0 < counting.calls <= pushed
