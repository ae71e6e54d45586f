"""A branch venue's stream timeline (server/domain/stream_timeline.py): spans of one state that
cover the session window, whose up time is the venue's |U_v| as the attendance rules count it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from server.domain.attendance import Policy, Sample, SessionInput, compute
from server.domain.stream_timeline import (
    ENDED,
    NO_SAMPLE,
    OFF_AIR,
    StreamSpan,
    sample_reach,
    stream_spans,
)
from server.domain.vocabulary import STREAM_STATES

DAY = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
S, E = DAY + 3600, DAY + 4 * 3600  # 09:00–12:00 in Shanghai
REACH = 15
OnAir = tuple[tuple[int, int | None], ...]
Drawn = tuple[int, int, int, int | None, OnAir, list[tuple[int, str]]]


def every(start: int, end: int, state: str, step: int = 5) -> list[tuple[int, str]]:
    return [(t, state) for t in range(start, end, step)]


def test_a_morning_with_an_outage_and_a_silence() -> None:
    points = [
        *every(S - 10, S + 3600, "good"),  # one from before S reaches into the window
        *every(S + 3600, S + 4200, "degraded"),
        *every(S + 4200, S + 5400, "down"),
        # 10:30–10:40: the agent sent nothing
        *every(S + 6000, E + 30, "good"),  # samples after E change nothing
    ]
    assert stream_spans(points, S, E, REACH) == (
        StreamSpan(S, S + 3600, "good"),
        StreamSpan(S + 3600, S + 4200, "degraded"),
        # the last "down" sample at 10:29:55 vouches for 15 s: until 10:30:10
        StreamSpan(S + 4200, S + 5410, "down"),
        StreamSpan(S + 5410, S + 6000, NO_SAMPLE),
        StreamSpan(S + 6000, E, "good"),
    )


def test_nothing_vouches_for_time_after_the_session_was_ended() -> None:
    points = every(S, E, "good")
    assert stream_spans(points, S, E, REACH, ended_at=E - 1800) == (
        StreamSpan(S, E - 1800, "good"),
        StreamSpan(E - 1800, E, ENDED),
    )
    assert stream_spans(points, S, E, REACH, ended_at=S - 60) == (StreamSpan(S, E, ENDED),)
    assert stream_spans(points, S, E, REACH, ended_at=E + 60) == (StreamSpan(S, E, "good"),)


def test_no_samples_is_one_span_of_no_report() -> None:
    assert stream_spans([], S, E, REACH) == (StreamSpan(S, E, NO_SAMPLE),)


def test_sparse_samples_leave_gaps_between_their_reaches() -> None:
    assert stream_spans([(S + 100, "good"), (S + 200, "good")], S, S + 300, REACH) == (
        StreamSpan(S, S + 100, NO_SAMPLE),
        StreamSpan(S + 100, S + 115, "good"),
        StreamSpan(S + 115, S + 200, NO_SAMPLE),
        StreamSpan(S + 200, S + 215, "good"),
        StreamSpan(S + 215, S + 300, NO_SAMPLE),
    )


def test_the_reach_follows_the_session_s_stats_interval() -> None:
    assert sample_reach(Policy()) == 15
    assert sample_reach(Policy(stats_interval_s=10)) == 30


@st.composite
def samples(draw: st.DrawFn) -> Drawn:
    """A short window, a stats interval, maybe when the session was ended, and samples (at most
    one a second) around the window."""
    start = DAY + draw(st.integers(0, 50))
    end = start + draw(st.integers(1, 300))
    interval = draw(st.integers(1, 20))
    ended_at = draw(st.none() | st.integers(start - 30, end + 30))
    times = draw(st.sets(st.integers(start - 90, end + 90), max_size=60))
    states = st.sampled_from(STREAM_STATES)
    edges = sorted(draw(st.lists(st.integers(start - 30, end + 30), max_size=6)))
    on_air: list[tuple[int, int | None]] = list(zip(edges[::2], edges[1::2], strict=False))
    if on_air and draw(st.booleans()):  # the last broadcast is still on air
        on_air[-1] = (on_air[-1][0], None)
    return start, end, interval, ended_at, tuple(on_air), sorted((t, draw(states)) for t in times)


@given(samples())
def test_spans_cover_the_window_in_order_and_count_up_time_as_the_rules_do(
    drawn: Drawn,
) -> None:
    start, end, interval, ended_at, on_air, points = drawn
    policy = Policy(stats_interval_s=interval)
    spans = stream_spans(points, start, end, sample_reach(policy), ended_at, on_air)
    assert spans[0].start == start and spans[-1].end == end
    assert all(a.end == b.start and a.state != b.state for a, b in pairwise(spans))
    assert all(span.seconds > 0 for span in spans)
    rules = compute(
        SessionInput(
            start=start,
            end=end,
            credit_hours=Decimal(1),
            policy=policy,
            main_venue="M",
            venues=("M", "B"),
            roster={},
            checkins=(),
            samples=tuple(Sample("B", t, state) for t, state in points),
            already_credited=frozenset(),
            ended_at=ended_at,
            on_air=on_air,
        )
    )
    branch = next(venue for venue in rules.venues if venue.venue == "B")
    assert sum(span.seconds for span in spans if span.up) == branch.up_seconds


def test_time_off_the_air_is_shown_as_such_whatever_the_samples_say() -> None:
    points = every(S - 10, E, "good")
    on_air = ((S + 600, S + 3600), (S + 4200, None))  # a pause, then on air until the end
    assert stream_spans(points, S, E, REACH, ended_at=E - 600, on_air=on_air) == (
        StreamSpan(S, S + 600, OFF_AIR),
        StreamSpan(S + 600, S + 3600, "good"),
        StreamSpan(S + 3600, S + 4200, OFF_AIR),
        StreamSpan(S + 4200, E - 600, "good"),
        StreamSpan(E - 600, E, ENDED),
    )
    # A silence on the air stays "no report"; off the air it is simply off the air.
    silent = [(t, state) for t, state in points if not S + 3000 <= t < S + 4800]
    assert stream_spans(silent, S, E, REACH, on_air=on_air)[1:5] == (
        StreamSpan(S + 600, S + 3000 + REACH - 5, "good"),
        StreamSpan(S + 3000 + REACH - 5, S + 3600, NO_SAMPLE),
        StreamSpan(S + 3600, S + 4200, OFF_AIR),
        StreamSpan(S + 4200, S + 4800, NO_SAMPLE),
    )
