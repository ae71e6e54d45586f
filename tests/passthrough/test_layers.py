"""Moving a subscriber's video between two layers of a broadcast, in the fan-out: it keeps getting
the old layer until the new one's keyframe (asked for at once, of the new layer's publisher
track), and what it receives goes on with the same SSRC, sequence numbers without a gap and
timestamps one frame on; audio is not touched."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from aiortc import RTCCertificate

from passthrough.fanout import RelayCounters, Source
from passthrough.frames import vp8_picture_size
from tests.passthrough.test_passthrough import (
    AUDIO_STEP,
    OPUS,
    VIDEO_STEP,
    VP8,
    FakeClock,
    Publisher,
    Room,
    contiguous,
    settle,
    vp8,
)

FRAME_S = 1 / 30


@pytest.fixture(scope="module")
def certificate() -> RTCCertificate:
    return RTCCertificate.generateCertificate()


@pytest.fixture
async def room(certificate: RTCCertificate) -> AsyncIterator[Room]:
    made = Room(certificate)
    try:
        yield made
    finally:
        await made.close()


class Layers:
    """A high and a low video layer with their publishers, on one clock, pushed frame by frame:
    the same moment's frame on both (as a camera and its clone give them), with their own
    timelines (each publisher track's RTP clock starts elsewhere)."""

    def __init__(self, clock: FakeClock) -> None:
        counters = RelayCounters()
        self.clock = clock
        self.high = Source("video", counters, clock=clock)
        self.low = Source("video", counters, clock=clock)
        self.high_publisher, self.low_publisher = Publisher(), Publisher()
        self.high.connect(VP8, self.high_publisher)
        self.low.connect(VP8, self.low_publisher)
        self.index = 0

    def tick(self, *, high_key: bool = False, low_key: bool = False) -> None:
        """One frame on each layer (frames carry their index; low ones + 10 000)."""
        index = self.index
        self.clock.now = index * FRAME_S
        self.high.push("VP8", vp8(index, key=high_key, size=40), 500_000 + index * VIDEO_STEP)
        self.low.push("VP8", vp8(10_000 + index, key=low_key), 7_000 + index * VIDEO_STEP)
        self.index += 1

    def close(self) -> None:
        self.high.close()
        self.low.close()


@pytest.fixture
def layers() -> Iterator[Layers]:
    made = Layers(FakeClock())
    yield made
    made.close()


async def test_a_switch_waits_for_the_new_layers_keyframe_and_continues_the_stream(
    layers: Layers, room: Room
) -> None:
    viewer = await room.join(layers.high)
    layers.tick(high_key=True, low_key=True)
    for _ in range(4):
        layers.tick()
    await settle()
    assert viewer.indices() == [0, 1, 2, 3, 4]
    requests = (layers.high_publisher.requests, layers.low_publisher.requests)

    viewer.outlet.switch_to(layers.low)
    await settle()
    # The low layer's publisher track is asked for a keyframe; the high one is not.
    assert (layers.high_publisher.requests, layers.low_publisher.requests) == (
        requests[0],
        requests[1] + 1,
    )
    assert viewer.outlet.pending is layers.low
    for _ in range(3):
        layers.tick()  # no keyframe on the low layer yet: the high layer goes on
    assert viewer.indices()[-3:] == [5, 6, 7]
    layers.tick(low_key=True)  # frame 8: the switch, just after the high layer's frame 8
    layers.tick()
    assert viewer.indices() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10_008, 10_009]
    assert viewer.outlet.source is layers.low
    assert viewer.outlet.pending is None
    assert (layers.high.subscribers, layers.low.subscribers) == (0, 1)

    packets = viewer.packets()
    assert {p.ssrc for p in packets} == {viewer.sender._ssrc}
    assert contiguous([p.sequence_number for p in packets], 1 << 16)
    stamps = [timestamp for timestamp, _ in viewer.frames()]
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(stamps)]
    assert steps == [VIDEO_STEP] * (len(stamps) - 1)  # one frame on, across the switch too

    # And back up, at the high layer's next keyframe.
    viewer.outlet.switch_to(layers.high)
    layers.tick()
    layers.tick(high_key=True)
    layers.tick()
    assert viewer.indices()[-3:] == [10_010, 11, 12]
    packets = viewer.packets()
    assert contiguous([p.sequence_number for p in packets], 1 << 16)
    stamps = [timestamp for timestamp, _ in viewer.frames()]
    assert [(b - a) % (1 << 32) for a, b in itertools.pairwise(stamps)] == [VIDEO_STEP] * (
        len(stamps) - 1
    )


async def test_a_switch_called_off_before_the_keyframe_stays_put(
    layers: Layers, room: Room
) -> None:
    viewer = await room.join(layers.high)
    layers.tick(high_key=True)
    viewer.outlet.switch_to(layers.low)
    layers.tick()
    viewer.outlet.switch_to(layers.high)  # changed its mind
    assert viewer.outlet.pending is None
    layers.tick(low_key=True)
    layers.tick()
    assert viewer.indices() == [0, 1, 2, 3]

    # A subscriber that was sent nothing yet moves at once, and waits for that layer's keyframe.
    fresh = await room.join(layers.high)
    layers.index += 30  # a second later: the low layer's keyframe interval is over
    layers.clock.now = layers.index * FRAME_S
    requests = layers.low_publisher.requests
    fresh.outlet.switch_to(layers.low)
    await settle()
    assert fresh.outlet.source is layers.low
    assert layers.low_publisher.requests == requests + 1
    layers.tick()
    layers.tick(low_key=True)
    assert fresh.indices() == [10_035]

    # A stopped outlet waits for nothing.
    viewer.outlet.switch_to(layers.low)
    viewer.outlet.stop()
    layers.tick(low_key=True)
    assert viewer.indices() == [0, 1, 2, 3, 34, 35]  # high frames before it stopped
    assert layers.low.subscribers == 1


async def test_the_keyframe_asked_for_is_asked_again_if_it_does_not_come(
    layers: Layers, room: Room
) -> None:
    viewer = await room.join(layers.high)
    layers.tick(high_key=True)
    viewer.outlet.switch_to(layers.low)
    await settle()
    asked = layers.low_publisher.requests
    for _ in range(30):  # a second of low-layer deltas: the PLI was lost
        layers.tick()
        await settle()
    assert layers.low_publisher.requests == asked + 2  # each time the interval (0.5 s) was over
    assert viewer.indices() == list(range(31))  # the high layer throughout


async def test_a_backed_up_subscriber_loses_video_never_audio(layers: Layers, room: Room) -> None:
    audio = Source("audio", RelayCounters(), clock=layers.clock)
    audio.connect(OPUS, Publisher())
    try:
        viewer, listener = await room.join(layers.high), await room.join(audio)
        for index in range(6):
            backed = index in (2, 3)
            viewer.socket.backlog = listener.socket.backlog = 10 * 1024 * 1024 if backed else 0
            layers.tick(high_key=index in (0, 5))
            audio.push("opus", b"\xfc" + index.to_bytes(4, "big"), index * AUDIO_STEP)
        assert viewer.indices() == [0, 1, 5]
        assert listener.indices() == [0, 1, 2, 3, 4, 5]
    finally:
        audio.close()


def test_vp8_picture_size() -> None:
    # A VP8 keyframe's header: frame tag, start code, then 14-bit width and height (LE).
    header = b"\x50\x42\x00\x9d\x01\x2a" + (640).to_bytes(2, "little") + (360).to_bytes(2, "little")
    assert vp8_picture_size(header) == (640, 360)
    assert vp8_picture_size(b"\x51" + header[1:]) is None  # a delta frame
    assert vp8_picture_size(header[:9]) is None
    assert vp8_picture_size(b"\x50\x42\x00\x00\x00\x00" + header[6:]) is None  # no start code
