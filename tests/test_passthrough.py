"""The pass-through relay's behaviour: keyframe recognition, ICE and codec settings, the fan-out of
encoded frames to bounded per-subscriber tracks, and whole publisher → relay → viewers runs on
loopback with real aiortc peers, including a republish to the same viewers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from fractions import Fraction

import av
import pytest
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    VideoStreamTrack,
)
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from hypothesis import given, settings
from hypothesis import strategies as st

from passthrough.fanout import (
    AUDIO_QUEUE,
    KEYFRAME_INTERVAL_S,
    VIDEO_QUEUE,
    RelayCounters,
    RelayTrack,
    Source,
)
from passthrough.frames import annexb_nal_types, clock_rate, is_keyframe, to_packet
from passthrough.peer import (
    IceSettings,
    before_gathering,
    codec_preferences,
    negotiated_codecs,
    new_peer,
    parse_hosts,
    parse_servers,
)
from passthrough.wiring import KINDS, Feed, accept_publisher, answer_subscriber

LOOPBACK = IceSettings(hosts=("127.0.0.1",))
WAIT_S = 5.0
# A viewer decodes video this soon after subscribing: ~0.12 s on loopback, or ~0.5 s when it joins
# just after another viewer's keyframe went by (its request waits out KEYFRAME_INTERVAL_S).
JOIN_S = 1.0
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


def vp8(index: int, *, key: bool) -> bytes:
    """A synthetic VP8 frame carrying its index (the frame tag's bit 0 says keyframe or not)."""
    return bytes([0x00 if key else 0x01]) + index.to_bytes(4, "big") + b"\x9d\x01\x2a"


def index_of(packet: av.Packet) -> int:
    return int.from_bytes(bytes(packet)[1:5], "big")


async def try_recv(track: RelayTrack) -> av.Packet | None:
    """The next queued packet, or None when nothing is queued (without waiting for one)."""
    task = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def drain(track: RelayTrack) -> list[av.Packet]:
    """Everything queued for a subscriber."""
    packets = []
    while (packet := await try_recv(track)) is not None:
        packets.append(packet)
    return packets


async def settle() -> None:
    """Let the keyframe-request tasks run."""
    for _ in range(3):
        await asyncio.sleep(0)


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


async def test_a_late_joiner_asks_for_a_keyframe_and_starts_there(
    video: Source, clock: FakeClock
) -> None:
    audio = Source("audio", video.counters, clock=clock)
    publisher, audio_publisher = Publisher(), Publisher()
    video.connect(VP8, publisher)
    audio.connect(OPUS, audio_publisher)
    for index in range(3):
        video.push("VP8", vp8(index, key=index == 0), index * 3000)
    assert publisher.requests == 0

    track, audio_track = video.attach(), audio.attach()
    await settle()
    assert (publisher.requests, audio_publisher.requests) == (1, 0)
    assert video.subscribers == 1

    for index in (3, 4):
        video.push("VP8", vp8(index, key=False), index * 3000)
    assert await drain(track) == []  # undecodable without the keyframe
    for index in (5, 6):
        video.push("VP8", vp8(index, key=index == 5), index * 3000)
    packets = await drain(track)
    assert [index_of(p) for p in packets] == [5, 6]
    assert [p.pts for p in packets] == [15_000, 18_000]

    audio.push("opus", b"\xfc\x01", 960)
    assert [bytes(p) for p in await drain(audio_track)] == [b"\xfc\x01"]
    audio.close()


async def test_keyframe_requests_go_out_at_most_once_per_interval(
    video: Source, clock: FakeClock
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    for now in (0.0, 0.1, 0.2, 0.49):
        clock.now = now
        video.attach()
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
    video.attach()  # nobody to ask while no publisher is connected
    await settle()
    assert publisher.requests == 3


async def test_a_join_after_the_asked_keyframe_passed_still_gets_one(
    video: Source, clock: FakeClock
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    first = video.attach()
    clock.now = 0.1
    video.push("VP8", vp8(0, key=True), 0)  # the keyframe the first viewer asked for
    clock.now = 0.2
    late = video.attach()  # within the interval: its request has to wait
    for index in range(1, 15):
        clock.now = 0.1 + index * FRAME_S
        video.push("VP8", vp8(index, key=False), index * 3000)
        await settle()
        # Once the interval is over (and not before), the request that had to wait goes out.
        assert publisher.requests == (1 if clock.now < KEYFRAME_INTERVAL_S else 2)
    video.push("VP8", vp8(15, key=True), 45_000)
    assert [index_of(p) for p in await drain(late)] == [15]
    assert [index_of(p) for p in await drain(first)] == list(range(16))


async def test_joins_served_by_a_keyframe_on_its_way_ask_nothing_more(
    video: Source, clock: FakeClock
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    tracks = [video.attach()]
    clock.now = 0.05
    tracks.append(video.attach())
    for index in range(30):
        clock.now = 0.1 + index * FRAME_S
        video.push("VP8", vp8(index, key=index == 0), index * 3000)
    await settle()
    assert publisher.requests == 1
    for track in tracks:
        assert [index_of(p) for p in await drain(track)] == list(range(30))


async def test_a_slow_viewer_is_flushed_and_nobody_else_waits(
    video: Source, clock: FakeClock
) -> None:
    publisher = Publisher()
    video.connect(VP8, publisher)
    fast, slow = video.attach(), video.attach()
    received: list[int] = []

    async def watch() -> None:
        while True:
            received.append(index_of(await fast.recv()))

    watcher = asyncio.ensure_future(watch())
    try:
        for index in range(VIDEO_QUEUE + 10):
            clock.now = index * FRAME_S
            video.push("VP8", vp8(index, key=index == 0), index * 3000)
            await asyncio.sleep(0)
        await settle()
        assert received == list(range(VIDEO_QUEUE + 10))
        assert slow.waiting_for_keyframe
        assert video.counters.resyncs == 1
        assert publisher.requests == 2  # the join's, and the resync's
        assert await drain(slow) == []  # flushed: the old frames are gone

        for index in range(VIDEO_QUEUE + 10, VIDEO_QUEUE + 13):
            video.push("VP8", vp8(index, key=index == VIDEO_QUEUE + 10), index * 3000)
            await asyncio.sleep(0)
        expected = list(range(VIDEO_QUEUE + 10, VIDEO_QUEUE + 13))
        assert [index_of(p) for p in await drain(slow)] == expected
        assert received == list(range(VIDEO_QUEUE + 13))
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_audio_keeps_the_newest_frames(clock: FakeClock) -> None:
    audio = Source("audio", RelayCounters(), clock=clock)
    track = audio.attach()
    total = AUDIO_QUEUE + 7
    for index in range(total):
        audio.push("opus", index.to_bytes(2, "big"), index * 960)
    kept = [int.from_bytes(bytes(p), "big") for p in await drain(track)]
    assert 0 < len(kept) <= AUDIO_QUEUE
    assert kept == list(range(total - len(kept), total))  # the oldest went, in order
    assert audio.counters.resyncs == 0
    audio.close()


Step = tuple[str, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("key"), st.integers(1, 3)),
        st.tuples(st.just("delta"), st.integers(1, 45)),
        st.tuples(st.just("read"), st.integers(0, 60)),
    ),
    max_size=40,
)


async def run_steps(kind: str, steps: list[Step]) -> None:
    """Push and read as told, checking what one subscriber gets against what was pushed."""
    source = Source(kind, RelayCounters())
    track = source.attach()
    capacity = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
    pushed: list[bool] = []  # keyframe or not, by index
    received: list[int] = []
    try:
        for action, count in [*steps, ("read", 10_000)]:
            if action == "read":
                got = []
                while len(got) < count and (packet := await try_recv(track)) is not None:
                    got.append(index_of(packet))
                assert len(got) <= capacity
                received += got
                continue
            for _ in range(count):
                index = len(pushed)
                pushed.append(action == "key")
                source.push("VP8" if kind == "video" else "opus", vp8(index, key=pushed[-1]), 0)
        assert received == sorted(set(received))  # in order, none twice
        if kind == "video":
            # Decodable: after any frame skipped, the subscriber resumes at a keyframe.
            for before, index in zip([None, *received], received, strict=False):
                if before is None or index != before + 1:
                    assert pushed[index], f"frame {index} follows {before} but is no keyframe"
        if pushed and (kind == "audio" or pushed[-1]):
            # Nothing is ever refused for being new: the last frame stays queued.
            assert received[-1] == len(pushed) - 1
    finally:
        source.close()


@settings(max_examples=60, deadline=None)
@given(steps=STEPS)
@pytest.mark.parametrize("kind", ["video", "audio"])
def test_queues_stay_bounded_in_order_and_decodable(kind: str, steps: list[Step]) -> None:
    asyncio.run(run_steps(kind, steps))


async def test_a_republish_continues_the_timeline(video: Source, clock: FakeClock) -> None:
    first = Publisher()
    video.connect(VP8, first)
    track = video.attach()
    for index in range(3):
        clock.now = 5.0 + index * FRAME_S
        video.push("VP8", vp8(index, key=index == 0), 777_000 + index * 3000)
    video.disconnect(first)
    assert not video.connected

    clock.now = 8.0
    second = Publisher()
    video.connect(VP8, second)
    video.disconnect(first)  # the old publisher's late goodbye leaves the new one alone
    assert video.connected
    for index in range(3, 6):
        clock.now = 8.0 + (index - 3) * FRAME_S
        video.push("VP8", vp8(index, key=index == 3), (index - 3) * 3000)  # its clock restarts

    pts = [p.pts for p in await drain(track)]
    assert pts[:3] == [0, 3000, 6000]
    gap = pts[3] - pts[2]
    assert abs(gap - (8.0 - (5.0 + 2 * FRAME_S)) * 90_000) <= 1
    assert pts[3:] == [pts[3], pts[3] + 3000, pts[3] + 6000]


async def test_stop_ends_recv_and_detaches(video: Source) -> None:
    video.connect(VP8, Publisher())
    track, other = video.attach(), video.attach()
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting
    assert track.readyState == "ended"
    assert video.subscribers == 1
    with pytest.raises(MediaStreamError):
        await track.recv()
    track.stop()  # twice is harmless

    video.push("VP8", vp8(0, key=True), 0)
    assert video.counters.frames_forwarded == 1  # only the other one
    assert not track.offer(to_packet(vp8(1, key=True), 0, 90_000), True)

    video.close()
    assert (other.readyState, video.subscribers, video.connected) == ("ended", 0, False)
    with pytest.raises(MediaStreamError):
        await other.recv()


async def test_close_cancels_a_keyframe_request_in_flight(video: Source) -> None:
    cancelled = asyncio.Event()

    async def stuck_publisher() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    video.connect(VP8, stuck_publisher)
    video.attach()
    await settle()
    video.close()
    await asyncio.wait_for(cancelled.wait(), WAIT_S)


async def test_a_failed_keyframe_request_is_logged(
    video: Source, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing_publisher() -> None:
        raise ConnectionError("peer gone")

    video.connect(VP8, failing_publisher)
    with caplog.at_level(logging.WARNING, logger="passthrough.fanout"):
        video.attach()
        await settle()
    assert "a keyframe request failed: peer gone" in caplog.text


async def test_counters_count_what_was_forwarded(video: Source, clock: FakeClock) -> None:
    counters = video.counters
    video.connect(VP8, Publisher())
    video.push("VP8", vp8(0, key=True), 0)  # nobody watches yet
    assert (counters.frames_forwarded, counters.bytes_forwarded, video.frames_in) == (0, 0, 1)

    first, second = video.attach(), video.attach()
    video.push("VP8", vp8(1, key=True), 3000)
    video.push("VP8", vp8(2, key=False), 6000)
    size = len(vp8(0, key=True))
    assert (counters.frames_forwarded, counters.bytes_forwarded) == (4, 4 * size)

    clock.now = 1.0
    video.attach()  # waits for a keyframe: deltas are not forwarded to it
    video.push("VP8", vp8(3, key=False), 9000)
    assert (counters.frames_forwarded, counters.bytes_forwarded) == (6, 6 * size)
    assert counters.keyframe_requests == 2
    assert video.frames_in == 4
    assert len(await drain(first)) == len(await drain(second)) == 3


# Whole runs on loopback --------------------------------------------------------------------


PeerFactory = Callable[[], RTCPeerConnection]


@pytest.fixture
async def peers() -> AsyncIterator[PeerFactory]:
    """Makes loopback-only peer connections and closes them all."""
    made: list[RTCPeerConnection] = []

    def make() -> RTCPeerConnection:
        pc = new_peer(LOOPBACK)
        made.append(pc)
        return pc

    try:
        yield make
    finally:
        for pc in made:
            await pc.close()


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
    answer, tracks = await answer_subscriber(peers(), pc.localDescription, sources, LOOPBACK)
    assert sorted(track.kind for track in tracks) == ["audio", "video"]
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
