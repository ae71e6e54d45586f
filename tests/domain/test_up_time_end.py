"""Up-time past the end (issue 13, item 3): a branch venue's sample never vouches for time after
the session was ended, nor after the agent reported the stream gone, whenever the samples arrive."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.attendance import (
    DEFAULT_POLICY,
    Policy,
    Sample,
    SessionInput,
    SessionResult,
    compute,
)
from tests.domain.test_attendance import (
    P_VENUES,
    E,
    S,
    brute_force,
    events,
    every,
    member,
    seconds_up,
    session,
    small_sessions,
)

# The reported case: the broadcast reached B1 at S + 3 and ended 60 s later, at S + 63, when the
# operator ended the session; B1's agent reported `good` every 5 s, the last at S + 58, and its
# final `down` (written when it heard the broadcast had ended) had not arrived at finalization.
ON_AIR, ENDED = S + 3, S + 63
GOOD = every("B1", ON_AIR, ENDED)
FINAL_DOWN = Sample("B1", ENDED, "down")


def up(result: SessionResult, venue: str) -> int:
    """A venue's up seconds."""
    (found,) = [v for v in result.venues if v.venue == venue]
    return found.up_seconds


def broadcast(
    samples: list[Sample], ended_at: int | None = ENDED, policy: Policy = DEFAULT_POLICY
) -> SessionInput:
    """The 09:00–12:00 session, A at B1 and K at M from 09:00, with these samples of B1."""
    inp = session(
        events(("A", "B1", "in", S), ("K", "M", "in", S)),
        roster={"A": "B1", "K": "M"},
        samples=samples,
        policy=policy,
    )
    return replace(inp, ended_at=ended_at)


def test_the_reported_case_is_sixty_seconds_not_seventy() -> None:
    assert GOOD[-1].t == S + 58 and len(GOOD) == 12
    before = compute(broadcast(GOOD, ended_at=None))
    assert up(before, "B1") == 70  # S+3 to S+58+15: what finalizing used to store
    result = compute(broadcast(GOOD))
    assert up(result, "B1") == 60
    a = member(result, "A")
    assert (a.presence_seconds, a.verified_seconds) == (E - S, 60)
    assert (a.status, a.reason) == ("partial", "outage")


def test_the_final_down_sample_arriving_later_changes_nothing() -> None:
    early = compute(broadcast(GOOD))
    late = compute(broadcast([*GOOD, FINAL_DOWN]))
    assert late == early
    # The end only cuts what the agent's own `down` sample cuts once it has arrived.
    assert compute(broadcast([*GOOD, FINAL_DOWN], ended_at=None)) == early


def test_samples_arriving_in_any_order_give_the_same_result() -> None:
    expected = compute(broadcast([*GOOD, FINAL_DOWN]))
    shuffled = [*GOOD, FINAL_DOWN]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert compute(broadcast(shuffled)) == expected
        assert compute(broadcast(shuffled, ended_at=None)) == expected
    # A batch uploaded late (the first minute's samples after the rest) is the same too.
    assert compute(broadcast([*GOOD[6:], FINAL_DOWN, *GOOD[:6]])) == expected


def test_a_down_sample_ends_the_cover_at_its_own_time() -> None:
    samples = [Sample("B1", S, "good"), Sample("B1", S + 7, "down"), Sample("B1", S + 30, "good")]
    result = compute(broadcast(samples, ended_at=None))
    assert up(result, "B1") == 7 + 15
    # Without the `down`, the first sample would have vouched for all its 15 s.
    assert up(compute(broadcast([samples[0], samples[2]], ended_at=None)), "B1") == 15 + 15


def test_the_end_cuts_a_sample_short_of_its_reach() -> None:
    assert up(compute(broadcast([Sample("B1", S, "good")], ended_at=S + 4)), "B1") == 4
    assert up(compute(broadcast([Sample("B1", S, "good")], ended_at=S + 15)), "B1") == 15
    assert up(compute(broadcast(every("B1", S, E), ended_at=S + 3_600)), "B1") == 3_600


def test_ended_at_or_after_the_window_end_changes_nothing() -> None:
    # The clock ends a forgotten session 30 min after its window; an operator on time, at E.
    whole = every("B1", S - 60, E + 60)
    expected = compute(broadcast(whole, ended_at=None))
    assert up(expected, "B1") == E - S
    for ended_at in (E, E + 1, E + 30 * 60):
        assert compute(broadcast(whole, ended_at=ended_at)) == expected


def test_ended_before_the_window_leaves_a_branch_no_up_time() -> None:
    result = compute(broadcast(every("B1", S - 600, E), ended_at=S - 1))
    assert up(result, "B1") == 0
    assert member(result, "A").verified_seconds == 0


def test_the_main_venue_and_unverified_sessions_keep_the_whole_window() -> None:
    result = compute(broadcast(GOOD))
    assert up(result, "M") == E - S
    k = member(result, "K")
    assert (k.status, k.verified_seconds) == ("present", E - S)
    off = compute(broadcast(GOOD, policy=Policy(require_stream_verification=False)))
    assert {v.venue: v.up_seconds for v in off.venues} == dict.fromkeys(("B1", "B2", "M"), E - S)
    assert member(off, "A").status == "present"


@settings(deadline=None)
@given(small_sessions(), st.integers(-100, 500))
def test_branch_up_time_is_the_sampled_up_time_before_the_end(
    inp: SessionInput, offset: int
) -> None:
    ended = replace(inp, ended_at=inp.start + offset)
    result = compute(ended)
    for venue in P_VENUES:
        whole = seconds_up(inp, venue)
        if venue != inp.main_venue and inp.policy.require_stream_verification:
            expected = {x for x in whole if x < inp.start + offset}
        else:
            expected = whole
        assert up(result, venue) == len(expected)
    # Members are judged against that up time, exactly as ATTENDANCE.md reads otherwise.
    assert list(result.members) == brute_force(replace(inp, samples=_cut(inp, offset)))


def _cut(inp: SessionInput, offset: int) -> tuple[Sample, ...]:
    """The samples with a `down` at the end on every branch venue: what the end stands for."""
    end = inp.start + offset
    downs = tuple(Sample(v, end, "down") for v in P_VENUES if v != inp.main_venue)
    return (*(s for s in inp.samples if s.t < end), *downs)


@settings(deadline=None)
@given(small_sessions(), st.integers(0, 200))
def test_an_end_at_or_after_the_window_end_changes_nothing(inp: SessionInput, after: int) -> None:
    assert compute(replace(inp, ended_at=inp.end + after)) == compute(inp)


def test_samples_vouch_only_while_the_broadcast_was_on_air() -> None:
    # 结束直播 at S + 40, twenty seconds before the session was ended.
    stopped = replace(broadcast(GOOD), on_air=((ON_AIR, S + 40),))
    assert up(compute(stopped), "B1") == 37
    # Stopped and started again: the pause between is not vouched for.
    paused = replace(broadcast(GOOD), on_air=((ON_AIR, S + 20), (S + 30, None)))
    assert up(compute(paused), "B1") == 17 + 33  # the open span runs to the session's end
    # A span before the window or after the end adds nothing; none recorded cuts nothing.
    outside = replace(broadcast(GOOD), on_air=((S - 100, S - 50), (ON_AIR, None), (E, E + 9)))
    assert up(compute(outside), "B1") == 60
    assert compute(replace(broadcast(GOOD), on_air=())) == compute(broadcast(GOOD))
    # The main venue keeps the whole window: it is the origin.
    assert up(compute(stopped), "M") == E - S
