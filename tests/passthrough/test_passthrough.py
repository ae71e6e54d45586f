"""The pass-through relay's behaviour: keyframe recognition, ICE and codec settings, the fan-out of
encoded frames as RTP packets sent straight to each subscriber (through real aiortc senders whose
DTLS and ICE handshakes are skipped), and whole publisher → relay → viewers runs on loopback with
real aiortc peers, including a republish to the same viewers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import av
import pytest
from aioice import Candidate
from aioice.ice import CandidatePair, StunProtocol
from aioice.turn import TurnClientUdpProtocol, TurnTransport
from aiortc import (
    RTCCertificate,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpSender,
    VideoStreamTrack,
)
from aiortc.clock import current_ntp_time
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
    unwrap_rtx,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from passthrough.fanout import (
    KEYFRAME_INTERVAL_S,
    MAX_BACKLOG,
    PackedFrame,
    RelayCounters,
    Source,
)
from passthrough.frames import annexb_nal_types, clock_rate, is_keyframe, to_packet
from passthrough.hooks import SenderLink
from passthrough.peer import (
    before_gathering,
    codec_preferences,
    negotiated_codecs,
    parse_hosts,
    parse_servers,
)
from passthrough.wiring import KINDS, Feed, accept_publisher, answer_subscriber
from tests.support.rtc_peers import LOOPBACK, PeerFactory

WAIT_S = 5.0
# A viewer decodes video soon after subscribing: ~0.12 s on loopback, or ~0.5 s when it joins
# just after another viewer's keyframe went by (its request waits out KEYFRAME_INTERVAL_S). The
# bound is generous: the suite shares the machine's two cores with another worker.
JOIN_S = 3.0
FRAME_S = 1 / 30

VP8 = RTCRtpCodecCapability(mimeType="video/VP8", clockRate=90_000)
OPUS = RTCRtpCodecCapability(mimeType="audio/opus", clockRate=48_000, channels=2)


# Encoded frames ------------------------------------------------------------------------------


def video_frame(index: int, width: int = 64, height: int = 48) -> av.VideoFrame:
    """A frame whose picture changes with `index`, so every delta frame has something in it."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for number, plane in enumerate(frame.planes):
        plane.update(bytes([(index * 7 + number * 50) % 256]) * plane.buffer_size)
    frame.pts = index * 3000
    frame.time_base = Fraction(1, 90_000)
    return frame


def test_is_keyframe_on_aiortcs_vp8_frames() -> None:
    encoder = Vp8Encoder()
    keyframes = []
    for index in range(8):
        payloads, _ = encoder.encode(video_frame(index), force_keyframe=index == 5)
        # The bare frame, as the receiver's jitter buffer reassembles it from the RTP payloads.
        keyframes.append(is_keyframe("VP8", b"".join(vp8_depayload(p) for p in payloads)))
    assert keyframes == [True, False, False, False, False, True, False, False]


def test_is_keyframe_on_aiortcs_h264_frames() -> None:
    encoder = H264Encoder()
    frames = []
    for index in range(8):
        payloads, _ = encoder.encode(video_frame(index), force_keyframe=index == 5)
        frames.append(b"".join(h264_depayload(p) for p in payloads))
    assert [is_keyframe("H264", frame) for frame in frames] == [
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    assert annexb_nal_types(frames[0])[:2] == [7, 8]  # SPS, PPS, then the IDR slice


START = b"\x00\x00\x00\x01"
SPS, PPS = START + b"\x67\x42\xc0\x1f\xda", START + b"\x68\xce\x3c\x80"
IDR, SLICE = START + b"\x65\x88\x84\x00", START + b"\x41\x9a\x02\x0c"
AUD, SEI = START + b"\x09\xf0", b"\x00\x00\x01\x06\x05\x01\x80"


@pytest.mark.parametrize(
    ("data", "keyframe"),
    [
        (SPS + PPS + IDR, True),
        (AUD + SPS + PPS + IDR, True),
        (IDR, True),
        (SPS, True),
        (SLICE, False),
        (AUD + SEI + SLICE, False),
        (SLICE + SLICE, False),
        (b"\x00\x00\x01\x65", True),  # three-byte start code
        (b"", False),
        (b"\x00\x00\x01", False),  # a start code with nothing after it
        (b"\x65\x88\x84", False),  # no start code: not Annex-B
    ],
    ids=lambda value: value.hex() if isinstance(value, bytes) else str(value),
)
def test_is_keyframe_on_h264_annexb_bytes(data: bytes, keyframe: bool) -> None:
    assert is_keyframe("H264", data) is keyframe
    assert is_keyframe("h264", data) is keyframe


def test_is_keyframe_on_vp8_bytes_and_audio() -> None:
    assert is_keyframe("VP8", b"\x50\x42\x00\x9d\x01\x2a")
    assert not is_keyframe("vp8", b"\x51\x42\x00")
    assert not is_keyframe("VP8", b"\x00\x00")  # too short for a frame tag
    assert is_keyframe("opus", b"\xfc")  # audio can always start anywhere


def test_to_packet_is_what_aiortcs_senders_pack() -> None:
    packet = to_packet(b"\x00frame", 123_000, clock_rate("video"))
    assert (bytes(packet), packet.pts, packet.time_base) == (
        b"\x00frame",
        123_000,
        Fraction(1, 90_000),
    )
    payloads, timestamp = Vp8Encoder().pack(packet)
    assert timestamp == 123_000
    assert b"".join(vp8_depayload(p) for p in payloads) == b"\x00frame"
    assert clock_rate("audio") == 48_000


# ICE and codec settings --------------------------------------------------------------------


def test_parse_hosts() -> None:
    assert parse_hosts("") == ()
    assert parse_hosts(" 127.0.0.1 , ::1,, 10.0.0.2 ,") == ("127.0.0.1", "::1", "10.0.0.2")
    with pytest.raises(ValueError, match="'localhost' is not an IP address"):
        parse_hosts("127.0.0.1,localhost")
    with pytest.raises(ValueError, match=r"'300\.1\.1\.1'"):
        parse_hosts("300.1.1.1")


def test_parse_servers() -> None:
    assert parse_servers("") == ()
    assert parse_servers(" stun:stun.example.net:3478, turn:turn.example.net?transport=tcp ,") == (
        "stun:stun.example.net:3478",
        "turn:turn.example.net?transport=tcp",
    )
    assert parse_servers("turns:turn.example.net:5349") == ("turns:turn.example.net:5349",)
    for bad in ("stun.example.net:3478", "https://stun.example.net", "stun:ok, udp:bad"):
        with pytest.raises(ValueError, match="is not a stun:, turn: or turns: URL"):
            parse_servers(bad)


async def offer_sdp(*tracks: MediaStreamTrack, video: list[RTCRtpCodecCapability] | None) -> str:
    """The offer an aiortc publisher makes, video codecs restricted if asked."""
    pc = RTCPeerConnection()
    try:
        for track in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video" and video is not None:
                transceiver.setCodecPreferences(video)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def capabilities(mime_type: str) -> list[RTCRtpCodecCapability]:
    kind = mime_type.split("/")[0]
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime_type]


async def test_negotiated_codecs_reads_each_kinds_first_codec() -> None:
    sdp = await offer_sdp(VideoStreamTrack(), AudioStreamTrack(), video=None)
    codecs = negotiated_codecs(sdp)
    assert codecs["video"] == VP8
    assert codecs["audio"] == RTCRtpCodecCapability(
        mimeType="audio/opus", clockRate=48_000, channels=2, parameters={}
    )

    h264 = capabilities("video/H264")[1:]  # the constrained-baseline one only
    sdp = await offer_sdp(VideoStreamTrack(), video=h264)
    codecs = negotiated_codecs(sdp)
    assert list(codecs) == ["video"]
    assert codecs["video"].mimeType == "video/H264"
    assert codecs["video"].parameters["profile-level-id"] == "42e01f"
    assert str(codecs["video"].parameters["packetization-mode"]) == "1"


def test_codec_preferences() -> None:
    rtx = capabilities("video/rtx")
    assert codec_preferences("video", VP8) == capabilities("video/VP8") + rtx
    assert codec_preferences("audio", OPUS) == capabilities("audio/opus")
    h264 = capabilities("video/H264")
    for wanted in h264:
        chosen = codec_preferences("video", wanted)
        assert chosen == [wanted, *rtx]
    # A profile aiortc lacks: any H.264 rather than none.
    high = RTCRtpCodecCapability("video/H264", 90_000, parameters={"profile-level-id": "640c1f"})
    assert codec_preferences("video", high) == h264 + rtx
    vp9 = RTCRtpCodecCapability(mimeType="video/VP9", clockRate=90_000)
    assert codec_preferences("video", vp9) == []


# Fan-out -----------------------------------------------------------------------------------

VIDEO_PT, RTX_PT, AUDIO_PT = 97, 98, 111
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LOCAL, REMOTE = ("127.0.0.1", 40_000), ("127.0.0.1", 50_000)
TURN_SERVER = ("127.0.0.1", 3478)
VIDEO_STEP, AUDIO_STEP = 3000, 960  # RTP units between frames: 30 fps video, 20 ms Opus


class FakeClock:
    """Seconds, advanced by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Publisher:
    """Stands in for the publishing peer: counts the keyframe requests it is sent."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self) -> None:
        self.requests += 1


def vp8(index: int, *, key: bool, size: int = 8) -> bytes:
    """A synthetic VP8 frame carrying its index (the frame tag's bit 0 says keyframe or not)."""
    head = bytes([0x00 if key else 0x01]) + index.to_bytes(4, "big") + b"\x9d\x01\x2a"
    return head + bytes(max(0, size - len(head)))


def index_of(frame: bytes) -> int:
    return int.from_bytes(frame[1:5], "big")


def contiguous(numbers: list[int], modulus: int) -> bool:
    """Each number follows the one before it (modulo the field's size)."""
    return all((b - a) % modulus == 1 for a, b in itertools.pairwise(numbers))


class RecordingSocket(asyncio.DatagramTransport):
    """A UDP socket that keeps what is sent, with a write backlog the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.datagrams: list[tuple[bytes, tuple[str, int] | None]] = []
        self.backlog = 0

    def sendto(self, data: Any, addr: Any = None) -> None:
        self.datagrams.append((bytes(data), addr))

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return False


class ClearSrtp:
    """An SRTP session that leaves packets readable (real keys are tested end to end below)."""

    def protect(self, data: bytes) -> bytes:
        return data

    def protect_rtcp(self, data: bytes) -> bytes:
        return data


class Subscriber:
    """One subscriber's sender as aiortc holds it: a real RTCRtpSender on real DTLS and ICE
    transports, with the handshakes skipped. DTLS is marked connected with a clear SRTP session,
    and ICE has nominated a pair whose real aioice StunProtocol writes into a RecordingSocket."""

    def __init__(self, source: Source, certificate: RTCCertificate) -> None:
        self.kind = source.kind
        gatherer = RTCIceGatherer(iceServers=[])
        self._connection = gatherer._connection
        self.dtls = RTCDtlsTransport(RTCIceTransport(gatherer), [certificate])
        self.sender = RTCRtpSender(source.kind, self.dtls)
        self.link = SenderLink(self.sender)
        self.link.take_over_rtp()
        self.socket = RecordingSocket()
        self.protocol = StunProtocol(self._connection)
        self.protocol.local_candidate = Candidate("1", 1, "udp", 1, *LOCAL, "host")
        self.protocol.connection_made(self.socket)
        self._pair = CandidatePair(self.protocol, Candidate("2", 1, "udp", 1, *REMOTE, "host"))
        self._turn_channel: bytes | None = None
        self.outlet = source.attach(self.link)

    async def start(self) -> None:
        """What negotiation ends with: aiortc's sender.send with the codec and header extensions
        the subscriber agreed to (RTCP starts for real, RTP is taken over)."""
        if self.kind == "video":
            codecs = [
                RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=VIDEO_PT),
                RTCRtpCodecParameters(
                    mimeType="video/rtx",
                    clockRate=90_000,
                    payloadType=RTX_PT,
                    parameters={"apt": VIDEO_PT},
                ),
            ]
        else:
            codecs = [
                RTCRtpCodecParameters(
                    mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=AUDIO_PT
                )
            ]
        await self.sender.send(
            RTCRtpSendParameters(
                codecs=codecs,
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
                    RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME_URI),
                ],
                muxId="0" if self.kind == "video" else "1",
                rtcp=RTCRtcpParameters(cname="relay"),
            )
        )
        await asyncio.sleep(0)  # the sender's (taken over) RTP task starts

    def connect(self) -> None:
        """DTLS connected and an ICE pair nominated."""
        self.dtls._state = DtlsState.CONNECTED
        self.dtls._tx_srtp = ClearSrtp()
        self._connection._nominated[1] = self._pair

    def relay_through_turn(self) -> None:
        """Reach the subscriber through a TURN allocation, as aioice does for a relayed candidate:
        the StunProtocol's transport becomes aioice's TurnTransport, whose client protocol
        (its channel to the subscriber already bound) writes ChannelData into our socket."""
        client = TurnClientUdpProtocol(
            TURN_SERVER, "relay", "secret", lifetime=600, channel_refresh_time=500
        )
        client.connection_made(self.socket)
        client.peer_to_channel[REMOTE] = 0x4000
        client.channel_to_peer[0x4000] = REMOTE
        client.channel_refresh_at[0x4000] = time.time() + 500
        self._turn_channel = b"\x40\x00"
        self.protocol.connection_made(TurnTransport(client))  # type: ignore[arg-type]

    async def stop(self) -> None:
        await self.sender.stop()

    def packets(self) -> list[RtpPacket]:
        """The RTP packets sent to this subscriber (not the RTCP aiortc's sender sends)."""
        packets = []
        for data, address in self.socket.datagrams:
            if self._turn_channel is None:
                assert address == REMOTE
                rtp = data
            else:
                assert (address, data[:2]) == (None, self._turn_channel)
                rtp = data[4:]
            if not is_rtcp(rtp):
                packets.append(RtpPacket.parse(rtp, self.link.extensions))
        return packets

    def frames(self) -> list[tuple[int, bytes]]:
        """The whole frames sent, with their RTP timestamps, each reassembled from its packets."""
        frames, parts = [], []
        for packet in self.packets():
            parts.append(vp8_depayload(packet.payload) if self.kind == "video" else packet.payload)
            if packet.marker:
                frames.append((packet.timestamp, b"".join(parts)))
                parts = []
        assert parts == [], "a frame's last packet has no marker"
        return frames

    def indices(self) -> list[int]:
        """Which of the synthetic frames arrived."""
        return [index_of(frame) for _, frame in self.frames()]


class Room:
    """The subscribers of one test; their senders are stopped at the end."""

    def __init__(self, certificate: RTCCertificate) -> None:
        self._certificate = certificate
        self._subscribers: list[Subscriber] = []

    async def join(self, source: Source, *, connected: bool = True) -> Subscriber:
        """A subscriber attached to the source (as answer_subscriber does), negotiated, and
        connected unless told otherwise."""
        subscriber = Subscriber(source, self._certificate)
        self._subscribers.append(subscriber)
        await subscriber.start()
        if connected:
            subscriber.connect()
        return subscriber

    async def close(self) -> None:
        async with asyncio.timeout(WAIT_S):  # a sender.stop() that hangs fails the test
            for subscriber in self._subscribers:
                await subscriber.stop()


async def settle() -> None:
    """Let the keyframe-request tasks run."""
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def certificate() -> RTCCertificate:
    return RTCCertificate.generateCertificate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def video(clock: FakeClock) -> AsyncIterator[Source]:
    source = Source("video", RelayCounters(), clock=clock)
    try:
        yield source
    finally:
        source.close()


@pytest.fixture
async def room(certificate: RTCCertificate) -> AsyncIterator[Room]:
    made = Room(certificate)
    try:
        yield made
    finally:
        await made.close()


async def test_a_late_joiner_asks_for_a_keyframe_and_starts_there(
    video: Source, clock: FakeClock, room: Room
) -> None:
    audio = Source("audio", video.counters, clock=clock)
    publisher, audio_publisher = Publisher(), Publisher()
    video.connect(VP8, publisher)
    audio.connect(OPUS, audio_publisher)
    for index in range(3):
        video.push("VP8", vp8(index, key=index == 0), index * VIDEO_STEP)
    assert publisher.requests == 0

    viewer, listener = await room.join(video), await room.join(audio)
    await settle()
    assert (publisher.requests, audio_publisher.requests) == (1, 0)
    assert (video.subscribers, audio.subscribers) == (1, 1)
    assert viewer.link.payload_type == VIDEO_PT  # learnt when aiortc started the sender

    for index in (3, 4):
        video.push("VP8", vp8(index, key=False), index * VIDEO_STEP)
    assert viewer.packets() == []  # undecodable without the keyframe
    assert viewer.outlet.waiting_for_keyframe
    assert viewer.outlet.connected
    for index in (5, 6):
        video.push("VP8", vp8(index, key=index == 5), index * VIDEO_STEP)
    assert viewer.indices() == [5, 6]

    packets = viewer.packets()
    assert [(p.version, p.payload_type, p.ssrc, p.marker) for p in packets] == [
        (2, VIDEO_PT, viewer.sender._ssrc, 1)
    ] * 2
    assert contiguous([p.sequence_number for p in packets], 1 << 16)
    assert (packets[1].timestamp - packets[0].timestamp) % (1 << 32) == VIDEO_STEP
    assert [p.extensions.mid for p in packets] == ["0", "0"]
    assert all(p.extensions.abs_send_time is not None for p in packets)

    audio.push("opus", b"\xfc\x01", 960)
    audio.push("opus", b"\xfc\x02", 1920)
    sent = listener.packets()
    assert [(p.payload, p.payload_type, p.marker, p.extensions.mid) for p in sent] == [
        (b"\xfc\x01", AUDIO_PT, 1, "1"),
        (b"\xfc\x02", AUDIO_PT, 1, "1"),
    ]
    assert (sent[1].timestamp - sent[0].timestamp) % (1 << 32) == AUDIO_STEP
    assert sent[0].ssrc == listener.sender._ssrc != viewer.sender._ssrc
    audio.close()


async def test_packets_are_what_aiortc_would_send_and_retransmit(video: Source, room: Room) -> None:
    """A frame larger than one packet: split once, marker on the last packet only, and every
    datagram byte for byte what aiortc serializes from the history it retransmits from."""
    video.connect(VP8, Publisher())
    viewer = await room.join(video)
    frame = vp8(0, key=True, size=3000)
    video.push("VP8", frame, 0)
    video.push("VP8", vp8(1, key=False), VIDEO_STEP)

    packets = viewer.packets()
    assert len(packets) == 4
    assert [p.marker for p in packets] == [0, 0, 1, 1]
    assert len({p.timestamp for p in packets[:3]}) == 1
    assert [f for _, f in viewer.frames()] == [frame, vp8(1, key=False)]
    history = viewer.link.history
    sent = [data for data, _ in viewer.socket.datagrams]
    for packet, data in zip(packets, sent, strict=True):
        kept = history[packet.sequence_number % RTP_HISTORY_SIZE]
        assert kept.serialize(viewer.link.extensions) == data

    # The figures aiortc reports (getStats now, sender reports every second or so).
    stats = [s for s in (await viewer.sender.getStats()).values() if s.type == "outbound-rtp"]
    assert [(s.packetsSent, s.bytesSent) for s in stats] == [
        (4, sum(len(p.payload) for p in packets))
    ]
    state = vars(viewer.sender)
    assert state["_RTCRtpSender__rtp_timestamp"] == packets[-1].timestamp
    ntp = state["_RTCRtpSender__ntp_timestamp"]
    assert abs(ntp - current_ntp_time()) < 1 << 32  # within a second of now
    assert packets[-1].extensions.abs_send_time == (ntp >> 14) & 0xFFFFFF

    # A NACK handled by aiortc's own sender: the packet comes back, wrapped as RTX.
    lost = packets[1]
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=viewer.link.ssrc)
    nack.lost = [lost.sequence_number]
    await viewer.sender._handle_rtcp_packet(nack)
    resent = viewer.packets()[-1]
    assert (resent.payload_type, resent.ssrc) == (RTX_PT, viewer.sender._rtx_ssrc)
    again = unwrap_rtx(resent, VIDEO_PT, viewer.link.ssrc)
    assert (again.sequence_number, again.timestamp, again.payload) == (
        lost.sequence_number,
        lost.timestamp,
        lost.payload,
    )


async def test_keyframe_requests_go_out_at_most_once_per_interval(
    video: Source, clock: FakeClock, room: Room
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    for now in (0.0, 0.1, 0.2, 0.49):
        clock.now = now
        await room.join(video)
    await settle()
    assert publisher.requests == 1
    clock.now = KEYFRAME_INTERVAL_S
    video.request_keyframe()
    clock.now = 0.99
    video.request_keyframe()
    await settle()
    assert publisher.requests == video.counters.keyframe_requests == 2
    clock.now = 1.0
    video.request_keyframe()
    await settle()
    assert publisher.requests == 3

    video.disconnect()
    clock.now = 10.0
    await room.join(video)  # nobody to ask while no publisher is connected
    await settle()
    assert publisher.requests == 3


async def test_a_join_after_the_asked_keyframe_passed_still_gets_one(
    video: Source, clock: FakeClock, room: Room
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    first = await room.join(video)
    clock.now = 0.1
    video.push("VP8", vp8(0, key=True), 0)  # the keyframe the first viewer asked for
    clock.now = 0.2
    late = await room.join(video)  # within the interval: its request has to wait
    for index in range(1, 15):
        clock.now = 0.1 + index * FRAME_S
        video.push("VP8", vp8(index, key=False), index * VIDEO_STEP)
        await settle()
        # Once the interval is over (and not before), the request that had to wait goes out.
        assert publisher.requests == (1 if clock.now < KEYFRAME_INTERVAL_S else 2)
    video.push("VP8", vp8(15, key=True), 15 * VIDEO_STEP)
    assert late.indices() == [15]
    assert first.indices() == list(range(16))


async def test_joins_served_by_a_keyframe_on_its_way_ask_nothing_more(
    video: Source, clock: FakeClock, room: Room
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    viewers = [await room.join(video)]
    clock.now = 0.05
    viewers.append(await room.join(video))
    for index in range(30):
        clock.now = 0.1 + index * FRAME_S
        video.push("VP8", vp8(index, key=index == 0), index * VIDEO_STEP)
    await settle()
    assert publisher.requests == 1
    for viewer in viewers:
        assert viewer.indices() == list(range(30))


async def test_a_subscriber_still_connecting_gets_nothing_and_is_served_once_connected(
    video: Source, clock: FakeClock, room: Room
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    viewer = await room.join(video, connected=False)
    await settle()
    assert publisher.requests == 1
    for index in range(30):  # the keyframe asked for goes by before DTLS is up
        clock.now = 0.1 + index * FRAME_S
        video.push("VP8", vp8(index, key=index == 0), index * VIDEO_STEP)
        await settle()
    assert viewer.socket.datagrams == []
    assert not viewer.outlet.connected
    assert publisher.requests == 1  # nobody connected waits: asking again would be for nothing

    viewer.connect()
    video.push("VP8", vp8(30, key=False), 30 * VIDEO_STEP)
    await settle()
    assert viewer.outlet.connected
    assert publisher.requests == 2  # a connected subscriber waits: ask again
    video.push("VP8", vp8(31, key=True), 31 * VIDEO_STEP)
    assert viewer.indices() == [31]


async def test_a_backed_up_subscriber_is_skipped_and_resumes_at_the_next_keyframe(
    video: Source, clock: FakeClock, room: Room
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    fast, slow = await room.join(video), await room.join(video)
    for index in range(5):
        video.push("VP8", vp8(index, key=index == 0), index * VIDEO_STEP)
    slow.socket.backlog = MAX_BACKLOG  # full, but not over
    video.push("VP8", vp8(5, key=False), 5 * VIDEO_STEP)
    assert slow.indices() == list(range(6))

    clock.now = 1.0
    slow.socket.backlog = MAX_BACKLOG + 1
    for index in range(6, 10):
        video.push("VP8", vp8(index, key=False), index * VIDEO_STEP)
    await settle()
    assert slow.indices() == list(range(6))
    assert slow.outlet.waiting_for_keyframe
    assert (video.counters.resyncs, publisher.requests) == (1, 2)  # the join's, the resync's

    slow.socket.backlog = 0
    video.push("VP8", vp8(10, key=False), 10 * VIDEO_STEP)  # still no keyframe: nothing
    video.push("VP8", vp8(11, key=True), 11 * VIDEO_STEP)
    video.push("VP8", vp8(12, key=False), 12 * VIDEO_STEP)
    assert slow.indices() == [*range(6), 11, 12]
    assert fast.indices() == list(range(13))
    # The sequence numbers go on without a gap (nothing was lost on the way); the timestamps
    # say how much time the skipped frames took.
    packets = slow.packets()
    assert contiguous([p.sequence_number for p in packets], 1 << 16)
    assert (packets[6].timestamp - packets[5].timestamp) % (1 << 32) == 6 * VIDEO_STEP
    counters = video.counters
    assert counters.frames_forwarded == 13 + 8
    assert counters.resyncs == 1


async def test_a_backed_up_audio_subscriber_still_gets_every_frame_and_asks_nothing(
    clock: FakeClock, room: Room
) -> None:
    audio = Source("audio", RelayCounters(), clock=clock)
    publisher = Publisher()
    audio.connect(OPUS, publisher)
    listener = await room.join(audio)
    try:
        for index in range(6):
            listener.socket.backlog = MAX_BACKLOG + 1 if index in (2, 3) else 0
            audio.push("opus", b"\xfc" + index.to_bytes(4, "big"), index * AUDIO_STEP)
        await settle()
        # Audio is never dropped: it is small, and a venue hears the lesson however thin its link.
        assert listener.indices() == [0, 1, 2, 3, 4, 5]
        assert (audio.counters.resyncs, publisher.requests) == (0, 0)
    finally:
        audio.close()


async def test_a_subscriber_reached_through_turn_gets_its_packets(
    video: Source, room: Room
) -> None:
    video.connect(VP8, Publisher())
    viewer = await room.join(video)
    viewer.relay_through_turn()
    video.push("VP8", vp8(0, key=True), 0)
    await settle()
    assert viewer.indices() == [0]


Step = tuple[str, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("key"), st.integers(1, 3)),
        st.tuples(st.just("delta"), st.integers(1, 12)),
        st.tuples(st.just("backlog"), st.integers(0, 1)),  # toggles that subscriber's backlog
    ),
    max_size=30,
)


def check_delivery(kind: str, subscriber: Subscriber, keys: list[bool], backed: list[bool]) -> None:
    """What one subscriber got, given which frames were keyframes and when it was backed up."""
    assert contiguous([p.sequence_number for p in subscriber.packets()], 1 << 16)
    frames = subscriber.frames()
    received = [index_of(frame) for _, frame in frames]
    step = VIDEO_STEP if kind == "video" else AUDIO_STEP
    for timestamp, index in zip([ts for ts, _ in frames], received, strict=True):
        # On the publisher's clock, from wherever this subscriber started.
        assert (timestamp - frames[0][0]) % (1 << 32) == (index - received[0]) * step
    if kind == "audio":
        assert received == list(range(len(backed)))  # audio is never skipped
        return
    assert not any(backed[index] for index in received)
    assert received == sorted(set(received))  # in order, none twice
    for before, index in zip([None, *received], received, strict=False):
        if before is None or index != before + 1:
            assert keys[index], f"frame {index} follows {before} but is no keyframe"
    got = set(received)
    for index, key in enumerate(keys):
        if not backed[index] and (key or index - 1 in got):
            assert index in got, f"frame {index} could have been sent"


async def run_steps(kind: str, steps: list[Step], certificate: RTCCertificate) -> None:
    """Push frames and back subscribers up as told; check what each subscriber got."""
    source = Source(kind, RelayCounters())
    source.connect(VP8 if kind == "video" else OPUS, Publisher())
    room = Room(certificate)
    try:
        steady = await room.join(source)
        flaky = [await room.join(source), await room.join(source)]
        keys: list[bool] = []
        backed: list[list[bool]] = [[], []]
        for action, value in steps:
            if action == "backlog":
                socket = flaky[value].socket
                socket.backlog = 0 if socket.backlog else MAX_BACKLOG + 1
                continue
            for _ in range(value):
                index = len(keys)
                keys.append(action == "key")
                for subscriber, late in zip(flaky, backed, strict=True):
                    late.append(subscriber.socket.backlog > MAX_BACKLOG)
                if kind == "video":
                    source.push("VP8", vp8(index, key=keys[-1]), index * VIDEO_STEP)
                else:
                    source.push("opus", b"\xfc" + index.to_bytes(4, "big"), index * AUDIO_STEP)
        await settle()
        check_delivery(kind, steady, keys, [False] * len(keys))
        for subscriber, late in zip(flaky, backed, strict=True):
            check_delivery(kind, subscriber, keys, late)
    finally:
        source.close()
        await room.close()


@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
@pytest.mark.parametrize("kind", ["video", "audio"])
def test_every_subscriber_gets_frames_in_order_and_decodable(
    kind: str, steps: list[Step], certificate: RTCCertificate
) -> None:
    asyncio.run(run_steps(kind, steps, certificate))


async def test_a_republish_continues_the_timeline(
    video: Source, clock: FakeClock, room: Room
) -> None:
    first = Publisher()
    video.connect(VP8, first)
    viewer = await room.join(video)
    for index in range(3):
        clock.now = 5.0 + index * FRAME_S
        video.push("VP8", vp8(index, key=index == 0), 777_000 + index * VIDEO_STEP)
    video.disconnect(first)
    assert not video.connected

    clock.now = 8.0
    second = Publisher()
    video.connect(VP8, second)
    video.disconnect(first)  # the old publisher's late goodbye leaves the new one alone
    assert video.connected
    for index in range(3, 6):
        clock.now = 8.0 + (index - 3) * FRAME_S
        # Its clock restarts at 0.
        video.push("VP8", vp8(index, key=index == 3), (index - 3) * VIDEO_STEP)

    assert viewer.indices() == list(range(6))
    stamps = [timestamp for timestamp, _ in viewer.frames()]
    elapsed = [(stamp - stamps[0]) % (1 << 32) for stamp in stamps]
    assert elapsed[:3] == [0, 3000, 6000]
    gap = elapsed[3] - elapsed[2]
    assert abs(gap - (8.0 - (5.0 + 2 * FRAME_S)) * 90_000) <= 1
    assert elapsed[3:] == [elapsed[3], elapsed[3] + 3000, elapsed[3] + 6000]
    assert contiguous([p.sequence_number for p in viewer.packets()], 1 << 16)


async def test_stop_detaches_and_a_stopped_outlet_sends_nothing(video: Source, room: Room) -> None:
    video.connect(VP8, Publisher())
    gone, other = await room.join(video), await room.join(video)
    gone.outlet.stop()
    assert video.subscribers == 1
    gone.outlet.stop()  # twice is harmless
    assert video.subscribers == 1

    video.push("VP8", vp8(0, key=True), 0)
    assert video.counters.frames_forwarded == 1  # only the other one
    assert (gone.socket.datagrams, other.indices()) == ([], [0])
    frame = PackedFrame([b"\x10" + vp8(1, key=True)], 0, True, current_ntp_time(), 0)
    assert not gone.outlet.offer(frame)
    assert gone.socket.datagrams == []

    video.close()
    assert (video.subscribers, video.connected, other.outlet.stopped) == (0, False, True)
    video.push("VP8", vp8(2, key=True), 2 * VIDEO_STEP)
    assert other.indices() == [0]


async def test_close_cancels_a_keyframe_request_in_flight(video: Source, room: Room) -> None:
    cancelled = asyncio.Event()

    async def stuck_publisher() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    video.connect(VP8, stuck_publisher)
    await room.join(video)
    await settle()
    video.close()
    await asyncio.wait_for(cancelled.wait(), WAIT_S)


async def test_a_failed_keyframe_request_is_logged(
    video: Source, room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing_publisher() -> None:
        raise ConnectionError("peer gone")

    video.connect(VP8, failing_publisher)
    with caplog.at_level(logging.WARNING, logger="passthrough.fanout"):
        await room.join(video)
        await settle()
    assert "a keyframe request failed: peer gone" in caplog.text


async def test_counters_count_what_was_forwarded(
    video: Source, clock: FakeClock, room: Room
) -> None:
    counters = video.counters
    video.connect(VP8, Publisher())
    video.push("VP8", vp8(0, key=True), 0)  # nobody watches yet
    assert (counters.frames_forwarded, counters.bytes_forwarded, video.frames_in) == (0, 0, 1)

    first, second = await room.join(video), await room.join(video)
    video.push("VP8", vp8(1, key=True), 3000)
    video.push("VP8", vp8(2, key=False), 6000)
    size = len(vp8(0, key=True))
    assert (counters.frames_forwarded, counters.bytes_forwarded) == (4, 4 * size)

    clock.now = 1.0
    await room.join(video)  # waits for a keyframe: deltas are not forwarded to it
    video.push("VP8", vp8(3, key=False), 9000)
    assert (counters.frames_forwarded, counters.bytes_forwarded) == (6, 6 * size)
    assert counters.keyframe_requests == 2
    assert video.frames_in == 4
    assert first.indices() == second.indices() == [1, 2, 3]


# Whole runs on loopback --------------------------------------------------------------------


@pytest.fixture
async def sources() -> AsyncIterator[dict[str, Source]]:
    counters = RelayCounters()
    made = {kind: Source(kind, counters) for kind in KINDS}
    try:
        yield made
    finally:
        for source in made.values():
            source.close()


class Viewer:
    """An aiortc subscriber that decodes what it receives and notes each video frame's pts."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.video_pts: list[int] = []
        self.audio_frames = 0
        self._changed = asyncio.Event()
        self._watchers: list[asyncio.Future[None]] = []
        pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._watchers.append(asyncio.ensure_future(self._watch(track)))

    async def _watch(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.video_pts.append(frame.pts)
                else:
                    self.audio_frames += 1
                self._changed.set()

    async def video_frames(self, count: int) -> None:
        """Returns once `count` video frames in all were decoded."""
        while len(self.video_pts) < count:
            self._changed.clear()
            await self._changed.wait()

    async def stop(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)


@pytest.fixture
async def viewers() -> AsyncIterator[list[Viewer]]:
    made: list[Viewer] = []
    try:
        yield made
    finally:
        for viewer in made:
            await viewer.stop()


async def publish(
    peers: PeerFactory, sources: dict[str, Source], video: list[RTCRtpCodecCapability] | None
) -> tuple[RTCPeerConnection, RTCPeerConnection, Feed]:
    """An aiortc publisher (test pattern and silence) whose media feed the sources."""
    publisher, relay = peers(), peers()
    for track in (VideoStreamTrack(), AudioStreamTrack()):
        transceiver = publisher.addTransceiver(track, direction="sendonly")
        if track.kind == "video" and video is not None:
            transceiver.setCodecPreferences(video)
    before_gathering(publisher, LOOPBACK)
    await publisher.setLocalDescription(await publisher.createOffer())
    answer, feed = await accept_publisher(relay, publisher.localDescription, sources, LOOPBACK)
    await publisher.setRemoteDescription(answer)
    return publisher, relay, feed


async def subscribe(
    peers: PeerFactory, sources: dict[str, Source], viewers: list[Viewer]
) -> Viewer:
    """A receive-only aiortc viewer answered by the relay with the sources' packets."""
    pc = peers()
    viewer = Viewer(pc)
    viewers.append(viewer)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    before_gathering(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    answer, outlets = await answer_subscriber(peers(), pc.localDescription, sources, LOOPBACK)
    assert sorted(outlet.kind for outlet in outlets) == ["audio", "video"]
    await pc.setRemoteDescription(answer)
    return viewer


def increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


async def test_two_viewers_watch_and_see_the_republish(
    peers: PeerFactory, sources: dict[str, Source], viewers: list[Viewer]
) -> None:
    publisher, relay, feed = await publish(peers, sources, video=None)
    assert sources["video"].codec == VP8
    assert sources["audio"].codec is not None
    assert sources["audio"].codec.mimeType == "audio/opus"

    for _ in range(2):
        async with asyncio.timeout(JOIN_S):
            viewer = await subscribe(peers, sources, viewers)
            await viewer.video_frames(1)
    await asyncio.wait_for(viewers[1].video_frames(10), WAIT_S)

    # The publisher leaves; the viewers stay connected to the relay.
    feed.stop()
    await publisher.close()
    await relay.close()
    assert not sources["video"].connected
    await asyncio.sleep(0.2)
    seen = [len(viewer.video_pts) for viewer in viewers]

    publisher, relay, feed = await publish(peers, sources, video=None)
    for viewer, count in zip(viewers, seen, strict=True):
        await asyncio.wait_for(viewer.video_frames(count + 10), WAIT_S)
        assert increasing(viewer.video_pts)
        # The time nobody published, not a jump back (the last frame before the gap can come late:
        # aiortc's jitter buffer completes a frame when the next one starts).
        after = viewer.video_pts[count - 1 :]
        assert max(b - a for a, b in itertools.pairwise(after)) >= 0.2 * 90_000
        assert viewer.audio_frames > 0
        assert viewer.pc.connectionState == "connected"
    assert sources["video"].subscribers == 2
    counters = sources["video"].counters
    assert counters.frames_forwarded > 0
    assert counters.bytes_forwarded > counters.frames_forwarded


async def test_an_h264_publisher_reaches_a_viewer_in_h264(
    peers: PeerFactory, sources: dict[str, Source], viewers: list[Viewer]
) -> None:
    await publish(peers, sources, video=capabilities("video/H264"))
    assert sources["video"].codec is not None
    assert sources["video"].codec.mimeType == "video/H264"

    viewer = await subscribe(peers, sources, viewers)
    # The viewer's join waited for a keyframe recognised in the tapped Annex-B frames.
    await asyncio.wait_for(viewer.video_frames(3), WAIT_S)
    remote = viewer.pc.remoteDescription
    assert negotiated_codecs(remote.sdp)["video"].mimeType == "video/H264"
