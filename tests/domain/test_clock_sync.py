"""The agent's clock-offset estimate from round trips (venue_agent/clock_sync.py)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from venue_agent.clock_sync import MAX_AGE_S, ClockEstimate, ClockSample, sample_of

T0 = 1_780_000_000.0  # some wall-clock moment, epoch seconds


def test_a_symmetric_round_trip_measures_the_offset_exactly() -> None:
    # the server is 7 s ahead; 0.1 s each way
    sample = sample_of(T0, T0 + 0.2, T0 + 7.1, 0.2, 100.0)
    assert sample is not None
    assert math.isclose(sample.offset_s, 7.0) and sample.rtt_s == 0.2


def test_a_request_delayed_one_way_errs_by_half_the_round_trip_at_most() -> None:
    # the clocks agree; the request spends 3 s in transit, the answer none
    sample = sample_of(T0, T0 + 3.0, T0 + 3.0, 3.0, 100.0)
    assert sample is not None and math.isclose(sample.offset_s, 1.5)


def test_exchanges_that_measured_nothing_give_no_sample() -> None:
    assert sample_of(T0, T0 + 1, T0, -0.1, 1.0) is None
    assert sample_of(T0, T0 + 1, T0, math.nan, 1.0) is None
    assert sample_of(T0, T0 - 1, T0, 0.1, 1.0) is None  # the wall clock was stepped back


def test_no_estimate_without_samples() -> None:
    estimate = ClockEstimate()
    assert estimate.best(0.0) is None and estimate.offset_ms(0.0) is None


def test_the_shortest_round_trip_wins() -> None:
    estimate = ClockEstimate()
    for offset, rtt in ((3.0, 2.0), (0.004, 0.01), (1.2, 0.5)):
        estimate.add(ClockSample(offset, rtt, 10.0))
    assert estimate.offset_ms(11.0) == 4


def test_a_tie_goes_to_the_newer_sample() -> None:
    estimate = ClockEstimate()
    estimate.add(ClockSample(1.0, 0.1, 10.0))
    estimate.add(ClockSample(2.0, 0.1, 20.0))
    assert estimate.offset_ms(21.0) == 2000


def test_old_samples_age_out() -> None:
    estimate = ClockEstimate(max_age_s=60.0)
    estimate.add(ClockSample(5.0, 0.01, 0.0))
    estimate.add(ClockSample(-1.0, 0.5, 50.0))
    assert estimate.offset_ms(59.0) == 5000
    assert estimate.offset_ms(61.0) == -1000
    assert estimate.offset_ms(111.0) is None


def test_only_the_window_of_recent_samples_counts() -> None:
    estimate = ClockEstimate(window=3)
    estimate.add(ClockSample(9.0, 0.001, 0.0))  # the best, but pushed out by three newer ones
    for n in range(3):
        estimate.add(ClockSample(float(n), 1.0 + n, 1.0))
    assert estimate.offset_ms(2.0) == 0
    assert MAX_AGE_S > 60  # the default keeps minutes, not seconds


@given(
    offset=st.floats(-86_000.0, 86_000.0),
    up=st.floats(0.0, 10.0),
    down=st.floats(0.0, 10.0),
    serving=st.floats(0.0, 1.0),
)
def test_the_error_is_never_more_than_half_the_round_trip(
    offset: float, up: float, down: float, serving: float
) -> None:
    """Whatever the delays each way, |estimate − offset| ≤ rtt / 2 (Cristian's bound)."""
    sent = T0
    server_time = sent + up + offset + serving / 2  # read somewhere while the server served
    received = sent + up + serving + down
    rtt = received - sent
    sample = sample_of(sent, received, server_time, rtt, 0.0)
    assert sample is not None
    assert abs(sample.offset_s - offset) <= rtt / 2 + 1e-6


@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(0, 30)), min_size=1, max_size=40))
def test_the_estimate_is_one_of_the_freshest_samples_with_the_least_rtt(
    samples: list[tuple[float, float]],
) -> None:
    estimate = ClockEstimate(window=8)
    for offset, rtt in samples:
        estimate.add(ClockSample(offset, rtt, 0.0))
    recent = samples[-8:]
    best = estimate.best(0.0)
    assert best is not None and best.rtt_s == min(rtt for _, rtt in recent)
    assert (best.offset_s, best.rtt_s) in recent
