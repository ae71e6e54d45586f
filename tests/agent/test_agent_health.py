"""The agent's stream-health rules (venue_agent/health.py): the W3C freeze rule, the interval's
figures from aiortc's counters, and the state thresholds, as properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from venue_agent.health import (
    DEGRADED,
    DOWN,
    DOWN_AFTER_S,
    FREEZE_WINDOW,
    GOOD,
    MAX_LOSS_PCT,
    MIN_FPS,
    FrameClock,
    Totals,
    classify,
    is_freeze,
    measure,
)

gaps = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)
counters = st.integers(min_value=0, max_value=2**40)
totals = st.builds(Totals, counters, counters, counters, st.integers(0, 2**31))
seconds = st.floats(min_value=0.5, max_value=60.0, allow_nan=False)
silences = st.none() | st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
SEVERITY = {GOOD: 0, DEGRADED: 1, DOWN: 2}


def test_the_freeze_rule_by_example() -> None:
    steady = [1 / 30] * 30
    assert not is_freeze(0.1, steady)  # 100 ms at 30 fps: short of average + 150 ms
    assert is_freeze(0.19, steady)
    slow = [0.2] * 30  # 5 fps: three times the average is the longer bar
    assert not is_freeze(0.5, slow)
    assert is_freeze(0.61, slow)
    assert not is_freeze(10.0, [])  # the first frame has nothing to be compared with


@given(st.lists(gaps, min_size=1, max_size=FREEZE_WINDOW), gaps, gaps)
def test_a_longer_gap_is_never_less_of_a_freeze(recent: list[float], a: float, b: float) -> None:
    shorter, longer = sorted((a, b))
    assert is_freeze(longer, recent) or not is_freeze(shorter, recent)


@given(st.lists(gaps, min_size=1, max_size=FREEZE_WINDOW))
def test_the_rule_by_its_definition(recent: list[float]) -> None:
    average = sum(recent) / len(recent)
    bar = max(3 * average, average + 0.150)
    assert is_freeze(bar + 1e-9, recent)
    assert not is_freeze(average, recent)  # an average gap is never a freeze
    if bar > 1e-6:
        assert not is_freeze(bar * (1 - 1e-6), recent)


@given(st.floats(min_value=1.0, max_value=120.0), st.integers(min_value=2, max_value=300))
def test_steady_frames_never_freeze(fps: float, count: int) -> None:
    frames = FrameClock()
    for n in range(count):
        frames.frame(100.0 + n / fps)
    assert frames.frames == count and frames.freezes == 0
    assert frames.silence(100.0 + (count - 1) / fps + 1.0) == pytest.approx(1.0)


@given(st.integers(min_value=1, max_value=5), st.floats(min_value=0.3, max_value=30.0))
def test_each_stall_in_a_steady_stream_is_one_freeze(stalls: int, stall_s: float) -> None:
    frames = FrameClock()
    at = 0.0
    for _ in range(stalls):
        for _ in range(FREEZE_WINDOW + 5):
            at += 1 / 30
            frames.frame(at)
        at += stall_s
        frames.frame(at)
    assert frames.freezes == stalls
    assert frames.frames == stalls * (FREEZE_WINDOW + 6)


@given(st.lists(gaps, max_size=200))
def test_freezes_are_fewer_than_gaps(sequence: list[float]) -> None:
    frames = FrameClock()
    assert frames.silence(0.0) is None
    at = 0.0
    for gap in sequence:
        at += gap
        frames.frame(at)
    assert 0 <= frames.freezes <= max(0, len(sequence) - 1)


@given(totals, totals, seconds, st.integers(0, 10_000), st.integers(0, 100), silences)
def test_the_figures_are_sane_whatever_the_counters_do(
    before: Totals, after: Totals, span: float, frames: int, freezes: int, silence: float | None
) -> None:
    health = measure(before, after, seconds=span, frames=frames, freezes=freezes, silence_s=silence)
    assert health.bitrate_kbps >= 0 and health.fps >= 0 and health.jitter_ms >= 0
    assert 0 <= health.loss_pct <= 100
    assert health.fps == pytest.approx(frames / span, abs=0.05)
    assert health.state == classify(health.fps, health.loss_pct, frames, freezes, silence)


@given(st.integers(0, 10**7), st.integers(0, 10**5), st.integers(0, 10**5), seconds)
def test_the_figures_from_counter_deltas(
    octets: int, received: int, lost: int, span: float
) -> None:
    before = Totals(1000, 50, 3, 0)
    after = Totals(1000 + octets, 50 + received, 3 + lost, 900)
    health = measure(before, after, seconds=span, frames=0, freezes=0, silence_s=None)
    assert health.bitrate_kbps == pytest.approx(octets * 8 / span / 1000, abs=0.05)
    expected_loss = 100 * lost / (lost + received) if lost + received else 0.0
    assert health.loss_pct == pytest.approx(expected_loss, abs=0.005)
    assert health.jitter_ms == 10.0  # 900 units of the 90 kHz video clock


@given(totals, seconds)
def test_a_new_connection_counts_from_zero(fresh: Totals, span: float) -> None:
    older = Totals(2**41, 2**41, 2**41, 0)  # more than any new connection has counted
    from_zero = measure(Totals(), fresh, seconds=span, frames=0, freezes=0, silence_s=None)
    after_reset = measure(older, fresh, seconds=span, frames=0, freezes=0, silence_s=None)
    assert after_reset == from_zero


@given(
    st.floats(0, 120),
    st.floats(0, 100),
    st.integers(0, 5000),
    st.integers(0, 50),
    silences,
)
def test_the_thresholds(
    fps: float, loss: float, frames: int, freezes: int, silence: float | None
) -> None:
    state = classify(fps, loss, frames, freezes, silence)
    if frames == 0 or silence is None or silence >= DOWN_AFTER_S:
        assert state == DOWN
    elif fps < MIN_FPS or loss >= MAX_LOSS_PCT or freezes:
        assert state == DEGRADED
    else:
        assert state == GOOD


@given(
    st.floats(0, 120),
    st.floats(0, 100),
    st.integers(0, 5000),
    st.integers(0, 50),
    st.floats(0, 100),
    st.floats(0, 50),
    st.floats(0, 50),
    st.integers(0, 10),
    st.floats(0, 10),
)
def test_worse_figures_never_give_a_better_state(
    fps: float,
    loss: float,
    frames: int,
    freezes: int,
    silence: float,
    fewer_fps: float,
    more_loss: float,
    more_freezes: int,
    longer_silence: float,
) -> None:
    assume(fps - fewer_fps >= 0)
    better = classify(fps, loss, frames, freezes, silence)
    worse = classify(
        fps - fewer_fps,
        min(100.0, loss + more_loss),
        frames,
        freezes + more_freezes,
        silence + longer_silence,
    )
    assert SEVERITY[worse] >= SEVERITY[better]


def test_a_typical_interval() -> None:
    health = measure(
        Totals(0, 0, 0, 0),
        Totals(625_000, 600, 0, 450),
        seconds=5.0,
        frames=150,
        freezes=0,
        silence_s=0.03,
    )
    assert health.state == GOOD
    assert (health.fps, health.bitrate_kbps, health.loss_pct, health.jitter_ms) == (
        30.0,
        1000.0,
        0.0,
        5.0,
    )
    lossy = measure(
        Totals(), Totals(625_000, 570, 30, 0), seconds=5.0, frames=150, freezes=0, silence_s=0.03
    )
    assert lossy.loss_pct == 5.0 and lossy.state == DEGRADED
    stalled = measure(
        Totals(), Totals(625_000, 600, 0, 0), seconds=5.0, frames=100, freezes=0, silence_s=2.0
    )
    assert stalled.state == DOWN
