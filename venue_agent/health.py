"""Stream health, pure (no I/O): what one sampling interval of a received broadcast looked like.

aiortc's receiver reports packets, losses, jitter and transport bytes but no frame counts, so
frames, fps and freezes come from the decoded video frames' arrival times.

- **freeze** (the W3C webrtc-stats rule): an inter-frame gap ≥ max(3 × average, average + 150 ms),
  the average taken over the gaps of the last 30 frames before it.
- **fps**: video frames decoded in the interval ÷ the interval's length.
- **bitrate_kbps**: the transport's received bytes in the interval × 8 ÷ seconds ÷ 1000.
- **loss_pct**: packets lost ÷ (lost + received) in the interval, audio and video together.
- **jitter_ms**: the video stream's interarrival jitter (RTP units ÷ 90 000, in ms) at the end.
- **state**, from the figures as reported (rounded):
  - `down` when no video frame was decoded in the interval, or none for ≥ 2 s at its end;
  - `degraded` when fps < 15, or loss ≥ 5 %, or a freeze happened in the interval;
  - `good` otherwise.
Counters that go backwards (a new upstream connection starts from zero) count from zero.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

FREEZE_WINDOW = 30  # frames whose gaps make the average
FREEZE_FACTOR = 3.0
FREEZE_MIN_EXTRA_S = 0.150
DOWN_AFTER_S = 2.0  # no frame for this long: the picture is gone
MIN_FPS = 15.0
MAX_LOSS_PCT = 5.0
VIDEO_CLOCK = 90_000
GOOD, DEGRADED, DOWN = "good", "degraded", "down"


def is_freeze(gap_s: float, recent_gaps_s: Sequence[float]) -> bool:
    """True when this inter-frame gap is a freeze given the gaps before it (none: it cannot be)."""
    if not recent_gaps_s:
        return False
    average = sum(recent_gaps_s) / len(recent_gaps_s)
    return gap_s >= max(FREEZE_FACTOR * average, average + FREEZE_MIN_EXTRA_S)


class FrameClock:
    """The decoded video frames of one reception: how many, the freezes, the last one's time."""

    def __init__(self) -> None:
        self.frames = 0
        self.freezes = 0
        self.last_at: float | None = None
        self._gaps: deque[float] = deque(maxlen=FREEZE_WINDOW)

    def frame(self, at: float) -> None:
        """A frame was decoded at this (monotonic) time."""
        if self.last_at is not None:
            gap = max(0.0, at - self.last_at)
            if is_freeze(gap, self._gaps):
                self.freezes += 1
            self._gaps.append(gap)
        self.frames += 1
        self.last_at = at

    def silence(self, now: float) -> float | None:
        """Seconds since the last frame; None before the first."""
        return None if self.last_at is None else max(0.0, now - self.last_at)


@dataclass(frozen=True)
class Totals:
    """An upstream connection's counters at one moment (jitter is a current value, not a sum)."""

    bytes_received: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    video_jitter: int = 0  # RTP clock units


@dataclass(frozen=True)
class Health:
    """The figures of one interval and the state they add up to."""

    state: str
    bitrate_kbps: float
    fps: float
    loss_pct: float
    jitter_ms: float


def _delta(after: int, before: int) -> int:
    # A counter smaller than before belongs to a new connection, which counted from zero.
    return max(0, after - before if after >= before else after)


def classify(
    fps: float, loss_pct: float, frames: int, freezes: int, silence_s: float | None
) -> str:
    """The state of an interval by the thresholds of this module's docstring."""
    if frames <= 0 or silence_s is None or silence_s >= DOWN_AFTER_S:
        return DOWN
    if fps < MIN_FPS or loss_pct >= MAX_LOSS_PCT or freezes > 0:
        return DEGRADED
    return GOOD


def measure(
    before: Totals,
    after: Totals,
    *,
    seconds: float,
    frames: int,
    freezes: int,
    silence_s: float | None,
) -> Health:
    """One interval's health from the counters at its ends and the frames decoded within it."""
    span = max(seconds, 1e-3)
    received = _delta(after.packets_received, before.packets_received)
    lost = _delta(after.packets_lost, before.packets_lost)
    bits = 8 * _delta(after.bytes_received, before.bytes_received)
    fps = round(max(0, frames) / span, 1)
    loss_pct = round(100.0 * lost / (lost + received), 2) if lost + received else 0.0
    return Health(
        state=classify(fps, loss_pct, frames, freezes, silence_s),
        bitrate_kbps=round(bits / span / 1000, 1),
        fps=fps,
        loss_pct=loss_pct,
        jitter_ms=round(max(0, after.video_jitter) * 1000 / VIDEO_CLOCK, 1),
    )


# An interval with no connection at all.
NOTHING_RECEIVED = Health(state=DOWN, bitrate_kbps=0.0, fps=0.0, loss_pct=0.0, jitter_ms=0.0)
