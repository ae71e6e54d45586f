"""Stream health, pure (no I/O): what one sampling interval of a received broadcast looked like.

aiortc's receiver reports packets, losses, jitter and transport bytes but no frame counts, so
frames, fps and freezes come from the decoded video frames' arrival times, and the time without
sound from the decoded audio frames'.

- **freeze** (the W3C webrtc-stats rule): an inter-frame gap ≥ max(3 × average, average + 150 ms),
  the average taken over the gaps of the last 30 frames before it.
- **fps**: video frames decoded in the interval ÷ the interval's length.
- **audio_pct**: the share of the interval with sound, in %: the time without it is the pauses
  longer than 0.5 s between decoded audio frames (and since the reception began, before the
  first), to within 0.5 s at the interval's edges. None when the connection at the interval's
  end offers no audio track: a lesson broadcast without sound is judged on its picture alone
  (the operator's page always sends its microphone; a test publisher may send video only).
- **bitrate_kbps**: the transport's received bytes in the interval × 8 ÷ seconds ÷ 1000.
- **loss_pct**: packets lost ÷ (lost + received) in the interval, audio and video together.
- **jitter_ms**: the video stream's interarrival jitter at the end, from RTP units of its codec's
  clock (90 000 per second for every WebRTC video codec) to ms.
- **bounds**: fps ≤ 120, bitrate ≤ 100 000 kbps, loss and audio 0–100 %, jitter ≤ 10 000 ms; a
  figure past its bound is reported as the bound (read: at least this). aiortc needs it: its
  jitter takes the RTP timestamps' difference without wrapping it, so when a stream's timestamp
  wraps (every 13 h 15 min at 90 kHz, from a random start) the jitter leaps by 2³²/16 units
  (about 3 000 s) and then loses a sixteenth of itself per frame.
- **state**, from the figures as reported (rounded):
  - `down` when no video frame was decoded in the interval, or none for ≥ 2 s at its end, or
    fps < 5 (a slideshow: a lesson nobody can follow), or audio_pct < 50 (no sound for more
    than half of the interval);
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
SLIDESHOW_FPS = 5.0  # fewer frames a second than this: a slideshow, down
MIN_FPS = 15.0
MAX_LOSS_PCT = 5.0
SOUND_GAP_S = 0.5  # a pause between decoded audio frames longer than this is time without sound
MIN_AUDIO_PCT = 50.0  # sound for less of the interval than this: down
VIDEO_CLOCK = 90_000  # RTP units per second of every WebRTC video codec
MAX_FPS = 120.0
MAX_BITRATE_KBPS = 100_000.0
MAX_JITTER_MS = 10_000.0
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


class SoundClock:
    """The decoded audio frames of one reception: how long it has been without sound."""

    def __init__(self, start: float) -> None:
        self.last_at = start  # the last frame's time; before the first, the reception's start
        self._past_pauses_s = 0.0

    def frame(self, at: float) -> None:
        """An audio frame was decoded at this (monotonic) time."""
        pause = at - self.last_at
        if pause > SOUND_GAP_S:
            self._past_pauses_s += pause
        self.last_at = max(self.last_at, at)

    def muted(self, now: float) -> float:
        """Seconds without sound from the start until now: the ended pauses longer than
        SOUND_GAP_S, and the one going on if it is that long already (never decreases)."""
        pause = now - self.last_at
        return self._past_pauses_s + (pause if pause > SOUND_GAP_S else 0.0)


@dataclass(frozen=True)
class Totals:
    """An upstream connection's counters at one moment (jitter is a current value, not a sum)."""

    bytes_received: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    video_jitter: int = 0  # RTP clock units
    video_clock: int = VIDEO_CLOCK  # those units per second


@dataclass(frozen=True)
class Health:
    """The figures of one interval and the state they add up to."""

    state: str
    bitrate_kbps: float
    fps: float
    loss_pct: float
    jitter_ms: float
    audio_pct: float | None  # None: the broadcast offers no sound


def _delta(after: int, before: int) -> int:
    # A counter smaller than before belongs to a new connection, which counted from zero.
    return max(0, after - before if after >= before else after)


def _within(value: float, top: float) -> float:
    """The value, or the nearer bound of [0, top] when it is past one."""
    return min(max(value, 0.0), top)


def jitter_ms(units: int, clock_rate: int) -> float:
    """An interarrival jitter in RTP units of a clock_rate Hz clock, in ms (bounded, rounded)."""
    return _within(round(units * 1000 / max(1, clock_rate), 1), MAX_JITTER_MS)


def classify(
    fps: float,
    loss_pct: float,
    frames: int,
    freezes: int,
    silence_s: float | None,
    audio_pct: float | None,
) -> str:
    """The state of an interval by the thresholds of this module's docstring."""
    if frames <= 0 or silence_s is None or silence_s >= DOWN_AFTER_S:
        return DOWN
    if fps < SLIDESHOW_FPS or (audio_pct is not None and audio_pct < MIN_AUDIO_PCT):
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
    muted_s: float | None,
) -> Health:
    """One interval's health from the counters at its ends, the frames decoded within it, and
    its time without sound (None when no audio track is offered)."""
    span = max(seconds, 1e-3)
    received = _delta(after.packets_received, before.packets_received)
    lost = _delta(after.packets_lost, before.packets_lost)
    bits = 8 * _delta(after.bytes_received, before.bytes_received)
    fps = _within(round(max(0, frames) / span, 1), MAX_FPS)
    loss_pct = round(100.0 * lost / (lost + received), 2) if lost + received else 0.0
    audio_pct = None if muted_s is None else _within(round(100 * (1 - muted_s / span), 1), 100.0)
    return Health(
        state=classify(fps, loss_pct, frames, freezes, silence_s, audio_pct),
        bitrate_kbps=_within(round(bits / span / 1000, 1), MAX_BITRATE_KBPS),
        fps=fps,
        loss_pct=loss_pct,
        jitter_ms=jitter_ms(after.video_jitter, after.video_clock),
        audio_pct=audio_pct,
    )


# An interval with no connection at all.
NOTHING_RECEIVED = Health(
    state=DOWN, bitrate_kbps=0.0, fps=0.0, loss_pct=0.0, jitter_ms=0.0, audio_pct=None
)
