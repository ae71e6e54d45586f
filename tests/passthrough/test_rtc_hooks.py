"""Each private aiortc/aioice hook in passthrough/hooks.py (and new_peer's ICE defaults), exercised
against the real, pinned aiortc on loopback, so that an incompatible upgrade fails here, loudly:
among them the SenderLink through which the relay's outlets send RTP themselves, checked by what
an aiortc viewer decodes, reports and gets retransmitted."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import av
import pytest
from aioice import Connection
from aioice.ice import StunProtocol
from aioice.turn import TurnClientUdpProtocol
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.clock import current_datetime
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket
from aiortc.sdp import SessionDescription

from passthrough.fanout import Outlet, RelayCounters, Source
from passthrough.frames import is_keyframe
from passthrough.hooks import (
    HookMissing,
    SenderLink,
    forward_keyframe_requests,
    jitter_buffer,
    limit_resends,
    media_ssrc,
    nominated_pair_types,
    payload_codecs,
    restrict_host_addresses,
    send_datagram,
    send_nack,
    send_pli,
    tap_receiver,
)
from passthrough.peer import IceSettings, before_gathering
from passthrough.wiring import KINDS, accept_publisher, answer_subscriber
from tests.support.rtc_peers import LOOPBACK, PeerFactory, until

VP8 = RTCRtpCodecCapability(mimeType="video/VP8", clockRate=90000)
WAIT_S = 5.0  # generous: a hook that works answers in well under a second on loopback
RTP_PAYLOAD_MAX = 1300  # bytes; a frame larger than this arrived in several RTP packets


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


async def test_jitter_buffer_is_the_video_receivers_own(peers: PeerFactory) -> None:
    # the stall guard (tests/passthrough/test_stall_guard.py) skips holes in it
    buffer = jitter_buffer(peers().addTransceiver("video").receiver)
    assert isinstance(buffer, JitterBuffer)
    assert buffer.capacity == 512 and buffer._origin is None


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


async def test_nominated_pair_types_name_the_pair_in_use(peers: PeerFactory) -> None:
    offerer, answerer = peers(), peers()
    offerer.addTransceiver("video")
    assert nominated_pair_types(offerer) is None  # nothing nominated before ICE ran
    await negotiate(offerer, answerer)
    await until(
        lambda: offerer.connectionState == answerer.connectionState == "connected",
        "both peers connected",
        WAIT_S,
    )
    # On loopback with no STUN/TURN server, each side has only its host candidate.
    assert nominated_pair_types(offerer) == ("host", "host")
    assert nominated_pair_types(answerer) == ("host", "host")


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


class LinkedSource(Source):
    """A Source that keeps the SenderLink each subscriber attaches with."""

    def __init__(self, kind: str, counters: RelayCounters) -> None:
        super().__init__(kind, counters)
        self.links: list[SenderLink] = []

    def attach(self, link: SenderLink) -> Outlet:
        self.links.append(link)
        return super().attach(link)


@dataclass
class Relayed:
    """A publisher → relay → aiortc viewer chain made with the relay's own wiring, the viewer's
    answer not yet applied."""

    track: NoiseTrack
    viewer: RTCPeerConnection
    relay_out: RTCPeerConnection
    answer: RTCSessionDescription
    links: dict[str, SenderLink]
    outlets: dict[str, Outlet]

    def receiver(self, kind: str) -> RTCRtpReceiver:
        return next(t.receiver for t in self.viewer.getTransceivers() if t.kind == kind)

    async def connect(self) -> None:
        """The viewer takes the answer and decodes a first video frame."""
        await self.viewer.setRemoteDescription(self.answer)
        await asyncio.wait_for(self.receiver("video").track.recv(), WAIT_S)


@pytest.fixture
async def relayed(peers: PeerFactory) -> AsyncIterator[Relayed]:
    publisher, relay_in = peers(), peers()
    track = NoiseTrack()
    publisher.addTrack(track)
    publisher.addTrack(AudioStreamTrack())
    counters = RelayCounters()
    sources = {kind: LinkedSource(kind, counters) for kind in KINDS}
    try:
        before_gathering(publisher, LOOPBACK)
        await publisher.setLocalDescription(await publisher.createOffer())
        answer, _ = await accept_publisher(relay_in, publisher.localDescription, sources, LOOPBACK)
        await publisher.setRemoteDescription(answer)

        viewer, relay_out = peers(), peers()
        viewer.addTransceiver("video", direction="recvonly")
        viewer.addTransceiver("audio", direction="recvonly")
        before_gathering(viewer, LOOPBACK)
        await viewer.setLocalDescription(await viewer.createOffer())
        answer, outlets = await answer_subscriber(
            relay_out, viewer.localDescription, sources, LOOPBACK
        )
        yield Relayed(
            track=track,
            viewer=viewer,
            relay_out=relay_out,
            answer=answer,
            links={kind: source.links[-1] for kind, source in sources.items()},
            outlets={outlet.kind: outlet for outlet in outlets},
        )
    finally:
        for source in sources.values():
            source.close()


async def stats_of(party: RTCRtpSender | RTCRtpReceiver, kind: str) -> list[Any]:
    """The statistics of one type from a sender's or receiver's getStats()."""
    return [s for s in (await party.getStats()).values() if s.type == kind]


async def outbound(sender: RTCRtpSender) -> tuple[int, int]:
    """The sender's own figures: packets and bytes sent (what its sender reports say too)."""
    [stats] = await stats_of(sender, "outbound-rtp")
    return stats.packetsSent, stats.bytesSent


async def test_sender_link_routes_packets_an_aiortc_viewer_decodes(relayed: Relayed) -> None:
    links = relayed.links
    # Before the viewer answers: no payload type negotiated, no DTLS, no nominated pair.
    assert [(link.payload_type, link.route()) for link in links.values()] == [(None, None)] * 2

    await relayed.connect()
    video = relayed.receiver("video")
    frames = [await asyncio.wait_for(video.track.recv(), WAIT_S) for _ in range(5)]
    assert {(frame.width, frame.height) for frame in frames} == {(320, 240)}
    sound = await asyncio.wait_for(relayed.receiver("audio").track.recv(), WAIT_S)
    assert isinstance(sound, av.AudioFrame)

    for media in SessionDescription.parse(relayed.answer.sdp).media:
        link = links[media.kind]
        assert link.payload_type == media.rtp.codecs[0].payloadType
        assert link.mid == media.rtp.muxId
        assert link.ssrc == media.ssrc[0].ssrc
        assert relayed.outlets[media.kind].connected
        route = link.route()
        assert route is not None
        srtp, protocol, address = route
        assert srtp is link.sender.transport._tx_srtp
        assert type(protocol) is StunProtocol
        # The viewer's end of the pair ICE nominated (audio and video share it: BUNDLE).
        viewer_ice = relayed.receiver(media.kind).transport.transport._connection
        assert address == viewer_ice._nominated[1].local_addr
        kept = list(link.history.values())
        assert kept
        assert all(isinstance(packet, RtpPacket) for packet in kept)
        assert {(p.payload_type, p.ssrc, p.extensions.mid) for p in kept} == {
            (link.payload_type, link.ssrc, link.mid)
        }

    # Without aioice's nominated pairs, route() says the hook is gone rather than guessing.
    connection = links["video"].sender.transport.transport._connection
    nominated = connection._nominated
    del connection._nominated
    try:
        with pytest.raises(HookMissing, match="_nominated"):
            links["video"].route()
    finally:
        connection._nominated = nominated


async def test_sender_link_keeps_the_senders_figures_for_stats_and_reports(
    relayed: Relayed,
) -> None:
    await relayed.connect()
    video = relayed.receiver("video")
    sender = relayed.links["video"].sender
    before = await outbound(sender)
    for _ in range(5):
        await asyncio.wait_for(video.track.recv(), WAIT_S)
    after = await outbound(sender)
    assert after[0] > before[0] > 0
    assert after[1] > before[1] > 0
    [inbound] = await stats_of(video, "inbound-rtp")
    assert 0 < inbound.packetsReceived <= after[0]

    # aiortc's sender reports carry them to the viewer (one every 0.5–1.5 s; no event says so).
    async with asyncio.timeout(WAIT_S):
        while not (reports := await stats_of(video, "remote-outbound-rtp")):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    [report] = reports
    assert report.ssrc == sender._ssrc
    assert 0 < report.packetsSent <= (await outbound(sender))[0]
    assert 0 < report.bytesSent <= (await outbound(sender))[1]
    # The report's NTP time is the time of sending, not zero or a frame's capture clock.
    assert abs((report.remoteTimestamp - current_datetime()).total_seconds()) < 2


async def test_a_viewers_nack_is_answered_from_the_history_the_outlet_fills(
    relayed: Relayed,
) -> None:
    await relayed.connect()
    video = relayed.receiver("video")
    link = relayed.links["video"]
    rtx = link.sender._rtx_ssrc
    assert rtx in {s.ssrc for s in SessionDescription.parse(relayed.answer.sdp).media[0].ssrc}
    # Stop the media, so that the history holds still and any new SSRC is the retransmission's.
    relayed.track.running.clear()
    await asyncio.sleep(0.2)
    assert rtx not in {s.source for s in video.getSynchronizationSources()}

    lost = next(iter(link.history.values()))
    assert link.history[lost.sequence_number % RTP_HISTORY_SIZE] is lost
    await video._send_rtcp_nack(link.ssrc, [lost.sequence_number])
    async with asyncio.timeout(WAIT_S):
        # aiortc tells nobody when a new SSRC shows up: look again and again.
        while rtx not in {s.source for s in video.getSynchronizationSources()}:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_closing_a_subscribers_peer_ends_the_taken_over_rtp_loop(
    relayed: Relayed, caplog: pytest.LogCaptureFixture
) -> None:
    await relayed.connect()
    with caplog.at_level(logging.WARNING, logger="aiortc"):
        async with asyncio.timeout(3):  # sender.stop() waits for the RTP loop to say it exited
            await relayed.relay_out.close()
    assert caplog.records == []
    sent = {kind: dict(link.history) for kind, link in relayed.links.items()}
    await asyncio.sleep(0.1)  # the publisher goes on, but nothing more is sent to this peer
    for kind, link in relayed.links.items():
        assert vars(link.sender)["_RTCRtpSender__rtp_exited"].is_set()
        assert link.route() is None
        assert link.history == sent[kind]
        assert not relayed.outlets[kind].connected


class RecordingSocket(asyncio.DatagramTransport):
    """A UDP socket that keeps what is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.datagrams: list[tuple[bytes, Any]] = []

    def sendto(self, data: Any, addr: Any = None) -> None:
        self.datagrams.append((bytes(data), addr))


def turn_client(socket: RecordingSocket, peer: tuple[str, int] | None) -> TurnClientUdpProtocol:
    """aioice's TURN client protocol, with its channel to `peer` already bound."""
    client = TurnClientUdpProtocol(
        ("127.0.0.1", 3478), "relay", "secret", lifetime=600, channel_refresh_time=500
    )
    client.connection_made(socket)
    if peer is not None:
        client.peer_to_channel[peer] = 0x4000
        client.channel_to_peer[0x4000] = peer
        client.channel_refresh_at[0x4000] = time.time() + 500
    return client


async def test_send_datagram_writes_to_a_udp_pair_at_once_and_other_protocols_send_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = ("127.0.0.1", 50_000)
    udp, socket = StunProtocol(Connection(ice_controlling=True)), RecordingSocket()
    udp.connection_made(socket)
    send_datagram(udp, b"rtp", peer)
    assert socket.datagrams == [(b"rtp", peer)]  # at once: no coroutine, no task

    # Another kind of protocol (aioice's TURN client here) keeps its own send_data.
    turn_socket = RecordingSocket()
    send_datagram(turn_client(turn_socket, peer), b"rtp", peer)
    assert turn_socket.datagrams == []
    await asyncio.sleep(0)
    assert turn_socket.datagrams == [(b"\x40\x00\x00\x03rtp", None)]  # as ChannelData

    # Its failures are noted, never raised at the sender nor left unretrieved in a task.
    full = turn_client(RecordingSocket(), None)
    full.channel_number = 0x5000  # every channel number taken
    with caplog.at_level(logging.DEBUG, logger="passthrough.hooks"):
        send_datagram(full, b"rtp", peer)
        for _ in range(3):
            await asyncio.sleep(0)
    assert "a relayed datagram was not sent: No TURN channel number available" in caplog.text


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


async def _jitter_no_buffer(pc: RTCPeerConnection) -> None:
    jitter_buffer(_receiver_lacking(pc, "_RTCRtpReceiver__jitter_buffer"))


async def _jitter_no_origin(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    _without(receiver._RTCRtpReceiver__jitter_buffer, "_origin")  # type: ignore[attr-defined]
    jitter_buffer(receiver)


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


async def _pair_no_nominated(pc: RTCPeerConnection) -> None:
    pc.addTransceiver("video")
    connection = ice_connection(pc)
    nominated = connection._nominated
    _without(connection, "_nominated")
    try:
        nominated_pair_types(pc)
    finally:
        connection._nominated = nominated  # closing the peer clears it


async def _tap_plain_object(pc: RTCPeerConnection) -> None:
    tap_receiver(object(), _ignore, decode=True)  # type: ignore[arg-type]


async def _forward_plain_object(pc: RTCPeerConnection) -> None:
    forward_keyframe_requests(object(), lambda: None)  # type: ignore[arg-type]


async def _media_ssrc_plain_object(pc: RTCPeerConnection) -> None:
    media_ssrc(object())  # type: ignore[arg-type]


async def _send_nack_no_method(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    receiver._send_rtcp_nack = None  # type: ignore[assignment,method-assign]
    await send_nack(receiver, 1234, [1])


async def _codecs_not_a_dict(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    receiver._RTCRtpReceiver__codecs = []  # type: ignore[attr-defined]
    payload_codecs(receiver)


async def _limit_resends_plain_object(pc: RTCPeerConnection) -> None:
    limit_resends(object(), list)  # type: ignore[arg-type]


async def _send_pli_plain_object(pc: RTCPeerConnection) -> None:
    await send_pli(object(), 1234)  # type: ignore[arg-type]


async def _link_plain_object(pc: RTCPeerConnection) -> None:
    SenderLink(object())  # type: ignore[arg-type]


async def _link_no_history(pc: RTCPeerConnection) -> None:
    SenderLink(_without(pc.addTransceiver("video").sender, "_RTCRtpSender__rtp_history"))  # type: ignore[arg-type]


async def _link_history_not_a_dict(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    sender._RTCRtpSender__rtp_history = [None] * RTP_HISTORY_SIZE  # type: ignore[attr-defined]
    SenderLink(sender)


async def _link_no_rtp_exited(pc: RTCPeerConnection) -> None:
    SenderLink(_without(pc.addTransceiver("video").sender, "_RTCRtpSender__rtp_exited"))  # type: ignore[arg-type]


async def _link_no_packet_count(pc: RTCPeerConnection) -> None:
    SenderLink(_without(pc.addTransceiver("video").sender, "_RTCRtpSender__packet_count"))  # type: ignore[arg-type]


async def _link_no_tx_srtp(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    _without(sender.transport, "_tx_srtp")
    SenderLink(sender)


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
        _jitter_no_buffer,
        _jitter_no_origin,
        _send_pli_plain_object,
        _send_pli_no_method,
        _send_nack_no_method,
        _codecs_not_a_dict,
        _limit_resends_plain_object,
        _restrict_no_connection,
        _restrict_no_gathering_flag,
        _pair_no_nominated,
        _link_plain_object,
        _link_no_history,
        _link_history_not_a_dict,
        _link_no_rtp_exited,
        _link_no_packet_count,
        _link_no_tx_srtp,
    ],
    ids=lambda use_hook: use_hook.__name__.strip("_"),
)
async def test_each_hook_raises_hook_missing_when_aiortc_changed(
    peers: PeerFactory, use_hook: Callable[[RTCPeerConnection], Awaitable[None]]
) -> None:
    with pytest.raises(HookMissing):
        await use_hook(peers())
