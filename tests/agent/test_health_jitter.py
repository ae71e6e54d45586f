"""The jitter the agent reports, from aiortc's own receiver statistics fed real RTP packets: in RTP
units of the stream's clock (RFC 3550's estimator, 1/16 of each interarrival difference), so
ms = units × 1000 ÷ clock rate; and the leap a wrapping RTP timestamp makes in it (aiortc takes the
timestamps' difference without wrapping it), which is how a venue came to report 820 398 ms."""

from __future__ import annotations

import time

import pytest
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket

from venue_agent.health import MAX_JITTER_MS, VIDEO_CLOCK, Totals, jitter_ms, measure

RTP_WRAP = 1 << 32
OPUS_CLOCK = 48_000


class Sender:
    """One RTP stream as aiortc's receiver statistics see it: a packet a frame, paced in real
    time (the estimator reads the wall clock)."""

    def __init__(self, clock: int, step: int, timestamp: int) -> None:
        self.stats = StreamStatistics(clock)
        self.step, self.sequence, self.timestamp = step, 1000, timestamp

    def send(self, count: int, every_s: float) -> None:
        for _ in range(count):
            time.sleep(every_s)
            packet = RtpPacket(96, 0, self.sequence, self.timestamp % RTP_WRAP, 1234)
            self.stats.add(packet)
            self.sequence, self.timestamp = self.sequence + 1, self.timestamp + self.step


def _reported(units: int, clock: int) -> float:
    health = measure(
        Totals(),
        Totals(video_jitter=units, video_clock=clock),
        seconds=5.0,
        frames=150,
        freezes=0,
        silence_s=0.03,
        muted_s=0.0,
    )
    return health.jitter_ms


def test_a_steady_stream_has_the_jitter_of_its_pacing_in_its_own_clock() -> None:
    video = Sender(VIDEO_CLOCK, 3000, 5_000)  # 30 fps: 3000 units of 90 kHz a frame
    video.send(15, 1 / 30)
    audio = Sender(OPUS_CLOCK, 960, 5_000)  # Opus, 20 ms: 960 units of 48 kHz a packet
    audio.send(15, 0.02)
    # Paced by time.sleep: well under a frame either way, on a loaded machine too.
    assert 0 <= _reported(video.stats.jitter, VIDEO_CLOCK) < 33.3
    assert 0 <= _reported(audio.stats.jitter, OPUS_CLOCK) < 20.0
    assert _reported(audio.stats.jitter, OPUS_CLOCK) == jitter_ms(audio.stats.jitter, OPUS_CLOCK)


def test_a_wrapping_rtp_timestamp_makes_aiortc_jitter_leap_and_the_agent_caps_it() -> None:
    video = Sender(VIDEO_CLOCK, 3000, RTP_WRAP - 10 * 3000)
    video.send(10, 1 / 30)  # the last timestamp before the wrap: 2³² − 3000
    assert jitter_ms(video.stats.jitter, VIDEO_CLOCK) < 33.3
    video.send(1, 1 / 30)  # timestamp 0: one frame on, modulo 2³²
    leapt = video.stats.jitter
    assert leapt == pytest.approx(RTP_WRAP / 16, rel=1e-4)
    assert leapt * 1000 / VIDEO_CLOCK == pytest.approx(2_982_616, rel=1e-4)  # 50 minutes
    video.send(20, 1 / 30)  # two thirds of a second later
    assert video.stats.jitter * 1000 / VIDEO_CLOCK == pytest.approx(820_398, rel=1e-4)  # issue 13
    assert _reported(leapt, VIDEO_CLOCK) == MAX_JITTER_MS
    assert _reported(video.stats.jitter, VIDEO_CLOCK) == MAX_JITTER_MS
