"""Real encoded media for the recorder and playback tests: VP8 frames from libvpx and Opus
frames from libopus (encoded here, as a publisher's browser would), a clock the test moves, and
feeding a recorder as a broadcast's sources would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction

import av

from passthrough.recorder import Recorder

FPS = 30
AUDIO_FRAME = 960  # 20 ms of Opus at 48 kHz


class Clock:
    """The recorder's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def vp8_frames(
    count: int, gop: int = 30, size: tuple[int, int] = (320, 240), noise: bool = False
) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.gop_size = gop
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    frames: list[bytes] = []
    for index in range(count):
        picture = av.VideoFrame(*size, "yuv420p")
        for plane in picture.planes:
            fill = os.urandom(plane.buffer_size) if noise else bytes([index * 7 % 256])
            plane.update(fill * (1 if noise else plane.buffer_size))
        picture.pts = index
        frames += [bytes(packet) for packet in encoder.encode(picture)]
    frames += [bytes(packet) for packet in encoder.encode(None)]
    return frames[:count]


def opus_frames(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "stereo", "s16"
    frames: list[bytes] = []
    for index in range(count):
        sound = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_FRAME)
        for plane in sound.planes:
            plane.update(bytes(plane.buffer_size))
        sound.sample_rate, sound.pts = 48_000, index * AUDIO_FRAME
        frames += [bytes(packet) for packet in encoder.encode(sound)]
    return frames


def keyframe(data: bytes) -> bool:
    return data[0] & 0x01 == 0


def feed(
    recorder: Recorder,
    clock: Clock,
    seconds: float,
    start_s: float,
    video: Iterator[bytes],
    audio: Iterator[bytes],
) -> None:
    """Frames for `seconds` of broadcast from `start_s` on the sources' clock, wall time along."""
    steps = round(seconds * 50)  # 20 ms ticks: one audio frame each, a video frame every 1/30 s
    shown = 0
    for tick in range(steps):
        at = start_s + tick * 0.02
        clock.now = 100.0 + at
        recorder.take("audio", "opus", next(audio), round(at * 48_000), True)
        while shown / FPS <= tick * 0.02:
            data = next(video)
            recorder.take(
                "video", "VP8", data, round((start_s + shown / FPS) * 90_000), keyframe(data)
            )
            shown += 1
