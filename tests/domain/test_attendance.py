"""The attendance and credit rules of ATTENDANCE.md, example by example and by property."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.attendance import (
    DEFAULT_POLICY,
    CheckInEvent,
    MemberResult,
    Policy,
    Sample,
    SessionInput,
    SessionResult,
    VenueResult,
    compute,
)
from server.domain.intervals import Coverage, Joint, intersect, merge, pieces, sampled_up

DAY = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp())
ZERO = Decimal(0)
THREE = Decimal(3)
VENUES = ("M", "B1", "B2")


def at(clock: str) -> int:
    """Epoch seconds of a wall-clock time on the test day: "HH:MM" or "HH:MM:SS"."""
    parts = [int(p) for p in clock.split(":")] + [0]
    return DAY + parts[0] * 3600 + parts[1] * 60 + parts[2]


S, E = at("09:00"), at("12:00")
D = E - S


def events(*rows: tuple[str, str, str, int]) -> tuple[CheckInEvent, ...]:
    """Check-ins (member, venue, kind, t) with seq in the order given."""
    return tuple(CheckInEvent(m, v, k, t, seq) for seq, (m, v, k, t) in enumerate(rows))


def every(venue: str, start: int, end: int, state: str = "good", step: int = 5) -> list[Sample]:
    """A sample every `step` seconds in [start, end)."""
    return [Sample(venue, t, state) for t in range(start, end, step)]


def session(
    checkins: Iterable[CheckInEvent] = (),
    *,
    roster: Mapping[str, str] | None = None,
    samples: Iterable[Sample] = (),
    policy: Policy = DEFAULT_POLICY,
    credited: Iterable[str] = (),
    start: int = S,
    end: int = E,
    hours: Decimal = THREE,
) -> SessionInput:
    """A session at venues M (main), B1 and B2; by default only A is expected, at M."""
    return SessionInput(
        start=start,
        end=end,
        credit_hours=hours,
        policy=policy,
        main_venue="M",
        venues=VENUES,
        roster={"A": "M"} if roster is None else roster,
        checkins=tuple(checkins),
        samples=tuple(samples),
        already_credited=frozenset(credited),
    )


def member(result: SessionResult, member_no: str) -> MemberResult:
    """The one result of a member."""
    (found,) = [r for r in result.members if r.member == member_no]
    return found


def one(*rows: tuple[str, str, str, int], **kwargs: object) -> MemberResult:
    """A's result from these check-ins."""
    return member(compute(session(events(*rows), **kwargs)), "A")  # type: ignore[arg-type]


# --- the worked example ------------------------------------------------------------------------


def worked_example() -> SessionInput:
    """ATTENDANCE.md's worked example, as written."""
    b1 = every("B1", at("08:30"), at("12:00"))
    b1 = [s if not at("10:00") <= s.t < at("10:20") else s._replace(state="down") for s in b1]
    return session(
        events(
            ("A", "B1", "in", at("08:50")),
            ("C", "B1", "in", at("09:25")),
            ("G", "B1", "in", at("09:45")),
            ("E", "B2", "in", at("09:00")),
            ("F", "B1", "in", at("09:00")),
            ("F", "B2", "in", at("09:05")),
            ("K", "M", "in", at("09:00")),
        ),
        roster={"A": "B1", "C": "B1", "G": "B1", "E": "B2", "F": "B1"},
        samples=b1,
    )


def test_worked_example_members() -> None:
    result = compute(worked_example())
    assert result.members == (
        MemberResult("A", "B1", ("B1",), "present", None, 10_800, 9_600, THREE, ()),
        MemberResult("C", "B1", ("B1",), "partial", "outage", 9_300, 8_100, ZERO, ("late",)),
        MemberResult("E", "B2", ("B2",), "partial", "outage", 10_800, 0, ZERO, ()),
        MemberResult(
            "F",
            "B1",
            ("B1", "B2"),
            "present",
            None,
            10_800,
            9_600,
            THREE,
            ("conflict", "wrong_venue"),
        ),
        MemberResult("G", "B1", ("B1",), "partial", "short_stay", 8_100, 6_900, ZERO, ("late",)),
        MemberResult("K", None, ("M",), "present", None, 10_800, 10_800, THREE, ("walk_in",)),
    )


def test_worked_example_venues_and_summary() -> None:
    result = compute(worked_example())
    assert result.venues == (
        VenueResult("B1", "branch", expected=4, checked_in=4, up_seconds=9_600),
        VenueResult("B2", "branch", expected=1, checked_in=2, up_seconds=0),
        VenueResult("M", "main", expected=0, checked_in=1, up_seconds=10_800),
    )
    assert dict(result.summary) == {
        "expected": 5,
        "present": 3,
        "partial": 3,
        "absent": 0,
        "walk_in": 1,
        "conflict": 1,
    }


def test_worked_example_without_the_outage_c_passes() -> None:
    inp = worked_example()
    inp = replace(inp, samples=every("B1", at("08:30"), at("12:00")))
    assert member(compute(inp), "C").status == "present"


# --- §1 presence at one venue ------------------------------------------------------------------


def test_sign_in_only_closes_at_end() -> None:
    assert one(("A", "M", "in", at("10:00"))).presence_seconds == 7_200


def test_in_and_out() -> None:
    r = one(("A", "M", "in", at("09:00")), ("A", "M", "out", at("11:30")))
    assert (r.presence_seconds, r.verified_seconds, r.flags) == (9_000, 9_000, ("left_early",))


def test_repeated_in_is_ignored() -> None:
    r = one(
        ("A", "M", "in", at("09:00")),
        ("A", "M", "in", at("10:00")),
        ("A", "M", "out", at("11:00")),
    )
    assert r.presence_seconds == 7_200


def test_out_then_in_reopens() -> None:
    r = one(
        ("A", "M", "in", at("09:00")),
        ("A", "M", "out", at("10:00")),
        ("A", "M", "in", at("10:30")),
    )
    assert r.presence_seconds == 3_600 + 5_400


def test_ties_on_t_are_broken_by_seq() -> None:
    # out before in at 10:00: closed then reopened, so present all morning.
    reopened = (
        CheckInEvent("A", "M", "out", at("10:00"), 2),
        CheckInEvent("A", "M", "in", at("10:00"), 3),
    )
    # in before out at 10:00: the in is a repeat, the out closes.
    closed = (
        CheckInEvent("A", "M", "in", at("10:00"), 2),
        CheckInEvent("A", "M", "out", at("10:00"), 3),
    )
    first = CheckInEvent("A", "M", "in", at("09:00"), 1)
    for pair, expected in ((reopened, D), (closed, 3_600)):
        for order in ((first, *pair), tuple(reversed((first, *pair)))):
            assert member(compute(session(order)), "A").presence_seconds == expected


def test_unmatched_out_is_flagged_and_ignored() -> None:
    r = one(("A", "M", "out", at("09:30")), ("A", "M", "in", at("10:00")))
    assert (r.presence_seconds, r.flags) == (7_200, ("late", "unmatched_out"))


def test_double_out_is_flagged() -> None:
    r = one(
        ("A", "M", "in", at("09:00")),
        ("A", "M", "out", at("11:55")),
        ("A", "M", "out", at("11:58")),
    )
    assert (r.presence_seconds, r.flags) == (10_500, ("unmatched_out",))


def test_only_an_out_is_absent_with_the_flag() -> None:
    r = one(("A", "M", "out", at("10:00")))
    assert (r.status, r.reason, r.venues, r.flags) == (
        "absent",
        "no_checkin",
        (),
        ("unmatched_out",),
    )


def test_clip_before_start() -> None:
    assert (
        one(("A", "M", "in", at("08:30")), ("A", "M", "out", at("09:30"))).presence_seconds == 1_800
    )
    r = one(("A", "M", "in", at("08:30")), ("A", "M", "out", at("08:50")))
    assert (r.status, r.reason, r.presence_seconds) == ("absent", "no_checkin", 0)


def test_clip_after_end() -> None:
    assert (
        one(("A", "M", "in", at("11:00")), ("A", "M", "out", at("12:20"))).presence_seconds == 3_600
    )
    r = one(("A", "M", "in", at("12:10")))
    assert (r.status, r.venues) == ("absent", ())


def test_in_exactly_at_end_is_empty() -> None:
    assert one(("A", "M", "in", E)).status == "absent"
    assert one(("A", "M", "in", E - 1)).presence_seconds == 1


def test_empty_intervals_are_dropped() -> None:
    r = one(("A", "M", "in", at("10:00")), ("A", "M", "out", at("10:00")))
    assert (r.status, r.venues, r.presence_seconds) == ("absent", (), 0)


def test_off_roster_member_without_presence_is_no_result() -> None:
    result = compute(session(events(("Z", "M", "in", at("12:30")), ("Y", "M", "out", at("10:00")))))
    assert [r.member for r in result.members] == ["A"]
    assert result.summary["walk_in"] == 0


def test_checkins_at_a_venue_outside_the_session_are_ignored() -> None:
    r = one(("A", "X", "in", at("09:00")), ("A", "X", "out", at("09:30")), ("A", "X", "out", S))
    assert (r.status, r.flags) == ("absent", ())
    assert [v.venue for v in compute(session(events(("A", "X", "in", S)))).venues] == list(
        sorted(VENUES)
    )


def test_unknown_kind_is_ignored() -> None:
    r = one(("A", "M", "in", at("09:00")), ("A", "M", "pause", at("09:30")))
    assert r.presence_seconds == D


def test_presence_at_two_venues_is_a_union() -> None:
    r = one(
        ("A", "M", "in", at("09:00")),
        ("A", "M", "out", at("10:00")),
        ("A", "B1", "in", at("10:00")),
        ("A", "B1", "out", at("11:00")),
        samples=every("B1", S, E),
    )
    assert (r.presence_seconds, r.verified_seconds, r.venues) == (7_200, 7_200, ("B1", "M"))
    assert r.flags == ("left_early", "wrong_venue")


# --- §2 stream up time -------------------------------------------------------------------------


def b1(samples: Iterable[Sample], policy: Policy = DEFAULT_POLICY) -> int:
    """B1's up seconds over the whole morning for these samples."""
    result = compute(session(samples=samples, policy=policy))
    (venue,) = [v for v in result.venues if v.venue == "B1"]
    return venue.up_seconds


def test_a_sample_covers_at_most_three_intervals() -> None:
    assert b1([Sample("B1", S, "good")]) == 15
    assert b1([Sample("B1", S, "good"), Sample("B1", S + 100, "good")]) == 30
    assert b1([Sample("B1", S, "good"), Sample("B1", S + 15, "good")]) == 30
    assert b1([Sample("B1", S, "good"), Sample("B1", S + 16, "good")]) == 30
    assert b1([Sample("B1", S, "good")], Policy(stats_interval_s=60)) == 180


def test_the_next_sample_ends_the_cover() -> None:
    assert b1([Sample("B1", S, "good"), Sample("B1", S + 5, "down")]) == 5
    assert b1([Sample("B1", S, "down"), Sample("B1", S + 5, "good")]) == 15


def test_degraded_counts_up_down_does_not() -> None:
    assert b1(every("B1", S, E, "degraded")) == D
    assert b1(every("B1", S, E, "down")) == 0
    assert b1([Sample("B1", S, "weird")]) == 0


def test_samples_are_clipped_to_the_window() -> None:
    assert b1([Sample("B1", S - 10, "good")]) == 5
    assert b1([Sample("B1", E - 5, "good")]) == 5
    assert b1([Sample("B1", E, "good"), Sample("B1", S - 15, "good")]) == 0
    assert b1(every("B1", S - 3_600, E + 3_600)) == D


def test_gap_longer_than_three_intervals_is_down() -> None:
    samples = [*every("B1", S, at("10:00")), *every("B1", at("10:00") + 60, E)]
    # The 09:59:55 sample vouches until 10:00:10; the next one comes at 10:01:00.
    assert b1(samples) == D - 50
    r = one(("A", "B1", "in", S), roster={"A": "B1"}, samples=samples)
    assert (r.presence_seconds, r.verified_seconds) == (D, D - 50)


def test_samples_in_any_order_and_same_second_any_up_wins() -> None:
    samples = [*every("B1", S, E)]
    assert b1(reversed(samples)) == D
    down_and_up = [Sample("B1", S, "down"), Sample("B1", S, "good")]
    assert b1(down_and_up) == b1(reversed(down_and_up)) == 15


def test_main_venue_is_always_up_and_its_samples_are_ignored() -> None:
    result = compute(session(samples=every("M", S, E, "down")))
    assert result.venues[-1] == VenueResult("M", "main", 1, 0, D)
    assert b1([Sample("X", S, "good"), Sample("B2", S, "good")]) == 0


def test_in_a_make_up_the_main_venue_is_verified_by_its_samples_too() -> None:
    # The recording is the origin of a make-up (补学): the main venue receives it like a branch.
    m_down_after_ten = [*every("M", S, at("10:00")), *every("M", at("10:00"), E, "down")]
    inp = replace(session(events(("A", "M", "in", S)), samples=m_down_after_ten), replay=True)
    result = compute(inp)
    assert result.venues[-1] == VenueResult("M", "main", 1, 1, at("10:00") - S)
    a = member(result, "A")
    assert (a.status, a.reason, a.verified_seconds) == ("partial", "outage", at("10:00") - S)
    unsampled = compute(replace(session(events(("A", "M", "in", S))), replay=True))
    assert member(unsampled, "A").verified_seconds == 0
    live = compute(replace(inp, replay=False))  # the same input for a live lesson: M is the origin
    assert member(live, "A").status == "present"


def test_verification_off_makes_every_venue_up() -> None:
    off = Policy(require_stream_verification=False)
    inp = replace(worked_example(), policy=off)
    result = compute(inp)
    assert {v.venue: v.up_seconds for v in result.venues} == {"B1": D, "B2": D, "M": D}
    e = member(result, "E")
    assert (e.status, e.reason, e.verified_seconds, e.credit_hours) == ("present", None, D, THREE)
    assert member(result, "C").status == "present"
    assert member(result, "G").reason == "short_stay"


# --- §3 threshold ------------------------------------------------------------------------------


def test_threshold_equality_passes_one_second_less_fails() -> None:
    t = 8_640
    r = one(("A", "M", "in", E - t), policy=Policy(late_grace_min=60))
    assert (r.verified_seconds, r.status, r.credit_hours) == (t, "present", THREE)
    r = one(("A", "M", "in", E - t + 1), policy=Policy(late_grace_min=60))
    assert (r.verified_seconds, r.status, r.reason) == (t - 1, "partial", "short_stay")


@pytest.mark.parametrize(
    ("ratio", "duration", "passing"),
    [
        ("0.7", 10_801, 7_561),  # T = 7 560.7
        ("0.56", 3_025, 1_694),  # 0.56 * 3025 in floats is 1694.0000000000002
        ("0.68", 4_675, 3_179),  # 0.68 * 4675 in floats is 3179.0000000000005
        ("0.28", 25, 7),
        ("1", 10_800, 10_800),
        ("0.8000000000000000000000000000001", 10_800, 8_641),  # beyond Decimal's 28 digits
        ("0.0001", 10_800, 2),  # T = 1.08
    ],
)
def test_threshold_is_exact(ratio: str, duration: int, passing: int) -> None:
    policy = Policy(min_ratio=Decimal(ratio), late_grace_min=10_000, early_grace_min=0)
    for verified, status in ((passing, "present"), (passing - 1, "partial")):
        end = S + duration
        r = one(("A", "M", "in", end - verified), policy=policy, end=end)
        assert (r.verified_seconds, r.status) == (verified, status)


def test_outage_needs_presence_at_the_threshold() -> None:
    roster = {"A": "B1"}
    down_half = [*every("B1", S, at("10:30")), *every("B1", at("10:30"), E, "down")]
    stayed = one(("A", "B1", "in", E - 8_640), roster=roster, samples=down_half)
    assert (stayed.status, stayed.reason) == ("partial", "outage")
    short = one(("A", "B1", "in", E - 8_639), roster=roster, samples=down_half)
    assert (short.status, short.reason) == ("partial", "short_stay")


# --- §4 flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrive", "late"), [(S, False), (S + 600, False), (S + 601, True), (S - 600, False)]
)
def test_late_grace_boundary(arrive: int, late: bool) -> None:
    assert ("late" in one(("A", "M", "in", arrive)).flags) is late


def test_late_with_no_grace() -> None:
    policy = Policy(late_grace_min=0)
    assert one(("A", "M", "in", S), policy=policy).flags == ()
    assert one(("A", "M", "in", S + 1), policy=policy).flags == ("late",)


@pytest.mark.parametrize(("leave", "early"), [(E, False), (E - 600, False), (E - 601, True)])
def test_left_early_grace_boundary(leave: int, early: bool) -> None:
    r = one(("A", "M", "in", S), ("A", "M", "out", leave))
    assert ("left_early" in r.flags) is early
    assert r.status == "present"


def test_left_early_with_no_grace() -> None:
    policy = Policy(early_grace_min=0)
    assert one(("A", "M", "in", S), ("A", "M", "out", E - 1), policy=policy).flags == (
        "left_early",
    )


def test_late_and_left_early_use_the_union_across_venues() -> None:
    r = one(
        ("A", "B1", "in", at("08:00")),
        ("A", "B1", "out", at("09:30")),
        ("A", "M", "in", at("09:30")),
        ("A", "M", "out", at("11:55")),
    )
    assert r.flags == ("wrong_venue",)


@pytest.mark.parametrize(("overlap", "conflict"), [(59, False), (60, False), (61, True)])
def test_conflict_needs_more_than_sixty_seconds(overlap: int, conflict: bool) -> None:
    r = one(
        ("A", "M", "in", S),
        ("A", "M", "out", at("10:00") + overlap),
        ("A", "B1", "in", at("10:00")),
        samples=every("B1", S, E),
    )
    assert ("conflict" in r.flags) is conflict
    assert (r.presence_seconds, r.verified_seconds, r.status) == (D, D, "present")


def test_conflict_sums_the_overlap_between_two_venues() -> None:
    # Two separate 40 s overlaps between M and B1 make 80 s together.
    r = one(
        ("A", "M", "in", S),
        ("A", "M", "out", S + 1_000),
        ("A", "B1", "in", S + 960),
        ("A", "B1", "out", S + 2_040),
        ("A", "M", "in", S + 2_000),
    )
    assert "conflict" in r.flags


def test_touching_venues_are_no_conflict() -> None:
    r = one(("A", "M", "in", S), ("A", "M", "out", at("10:00")), ("A", "B1", "in", at("10:00")))
    assert r.flags == ("wrong_venue",)


def test_wrong_venue_only_elsewhere() -> None:
    r = one(("A", "M", "in", S), roster={"A": "B2"})
    assert (r.assigned_venue, r.venues, r.flags) == ("B2", ("M",), ("wrong_venue",))


def test_walk_in_is_credited_and_never_absent() -> None:
    result = compute(session(events(("W", "B1", "in", S)), samples=every("B1", S, E)))
    w = member(result, "W")
    assert w == MemberResult("W", None, ("B1",), "present", None, D, D, THREE, ("walk_in",))
    assert member(result, "A").status == "absent"
    assert dict(result.summary) == {
        "expected": 1,
        "present": 1,
        "partial": 0,
        "absent": 1,
        "walk_in": 1,
        "conflict": 0,
    }


def test_walk_in_can_be_partial() -> None:
    w = member(compute(session(events(("W", "M", "in", at("11:00"))))), "W")
    assert (w.status, w.reason, w.credit_hours, w.flags) == (
        "partial",
        "short_stay",
        ZERO,
        ("late", "walk_in"),
    )


def test_repeat_keeps_present_and_credits_nothing() -> None:
    r = one(("A", "M", "in", S), credited={"A"})
    assert (r.status, r.reason, r.credit_hours, r.flags) == ("present", None, ZERO, ("repeat",))


def test_repeat_only_for_present() -> None:
    r = one(("A", "M", "in", at("11:00")), credited={"A"})
    assert (r.status, r.flags) == ("partial", ("late",))
    assert one(credited={"A"}).flags == ()


def test_credit_hours_are_the_sessions() -> None:
    assert one(("A", "M", "in", S), hours=Decimal("1.5")).credit_hours == Decimal("1.5")


def test_absent_roster_member() -> None:
    assert one() == MemberResult("A", "M", (), "absent", "no_checkin", 0, 0, ZERO, ())


def test_venue_counts() -> None:
    inp = session(
        events(
            ("A", "B1", "in", S),
            ("B", "B1", "in", S),
            ("B", "B2", "in", S),
            ("W", "B2", "in", S),
            ("C", "B1", "in", E),  # no presence: not checked in anywhere
        ),
        roster={"A": "B1", "B": "B1", "C": "B1", "D": "B2"},
        samples=every("B2", S, at("10:00")),
    )
    assert compute(inp).venues == (
        VenueResult("B1", "branch", 3, 2, 0),
        VenueResult("B2", "branch", 1, 2, 3_600 + 10),  # the 09:59:55 sample reaches 10:00:10
        VenueResult("M", "main", 0, 0, D),
    )


def test_main_venue_missing_from_venues_is_still_a_venue() -> None:
    inp = replace(session(events(("A", "M", "in", S))), venues=("B1",))
    result = compute(inp)
    assert [v.venue for v in result.venues] == ["B1", "M"]
    assert member(result, "A").status == "present"


def test_adding_an_out_can_lower_presence() -> None:
    # Why the monotonicity property below adds only `in` check-ins.
    assert one(("A", "M", "in", S)).presence_seconds == D
    assert one(("A", "M", "in", S), ("A", "M", "out", at("10:00"))).presence_seconds == 3_600


# --- Policy ------------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    assert Policy.from_json(None) == (DEFAULT_POLICY, {})
    assert Policy.from_json({}) == (DEFAULT_POLICY, {})
    assert Policy.from_json({"min_ratio": None}) == (DEFAULT_POLICY, {})
    assert Policy(Decimal("0.8"), 10, 10, True, 5) == DEFAULT_POLICY


def test_policy_full_and_round_trip() -> None:
    raw: dict[str, object] = {
        "min_ratio": 0.7,
        "late_grace_min": 0,
        "early_grace_min": 15,
        "require_stream_verification": False,
        "stats_interval_s": 3600,
    }
    policy, problems = Policy.from_json(raw)
    assert problems == {}
    assert policy == Policy(Decimal("0.7"), 0, 15, False, 3600)
    assert policy is not None
    assert policy.min_ratio.as_tuple() == Decimal("0.7").as_tuple()
    assert policy.to_json() == raw
    assert Policy.from_json(policy.to_json()) == (policy, {})
    assert Policy.from_json(DEFAULT_POLICY.to_json()) == (DEFAULT_POLICY, {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, Decimal(1)),
        (0.8, Decimal("0.8")),
        (0.1, Decimal("0.1")),
        ("0.75", Decimal("0.75")),
        (" 0.9 ", Decimal("0.9")),
        ("1", Decimal(1)),
        ("1.000", Decimal(1)),
        (Decimal("0.3333"), Decimal("0.3333")),
    ],
)
def test_policy_min_ratio_accepted(value: object, expected: Decimal) -> None:
    policy, problems = Policy.from_json({"min_ratio": value})
    assert problems == {}
    assert policy is not None
    assert policy.min_ratio == expected
    assert Fraction(policy.min_ratio) == Fraction(expected)


@pytest.mark.parametrize(
    "value",
    [
        *(0, -0.1, 1.01, "0", "2", "-1", "abc", "", "NaN", "Infinity", float("nan"), float("inf")),
        *(True, [0.8], {"v": 1}, "0." + "1" * 80),
    ],
)
def test_policy_min_ratio_problems(value: object) -> None:
    policy, problems = Policy.from_json({"min_ratio": value})
    assert policy is None
    assert list(problems) == ["min_ratio"]


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ({"late_grace_min": -1}, ["late_grace_min"]),
        ({"early_grace_min": -5}, ["early_grace_min"]),
        ({"late_grace_min": "10"}, ["late_grace_min"]),
        ({"late_grace_min": 10.0}, ["late_grace_min"]),
        ({"early_grace_min": True}, ["early_grace_min"]),
        ({"stats_interval_s": 0}, ["stats_interval_s"]),
        ({"stats_interval_s": 3601}, ["stats_interval_s"]),
        ({"stats_interval_s": -5}, ["stats_interval_s"]),
        ({"stats_interval_s": 2.5}, ["stats_interval_s"]),
        ({"require_stream_verification": "yes"}, ["require_stream_verification"]),
        ({"require_stream_verification": 1}, ["require_stream_verification"]),
        ({"grace": 5}, ["grace"]),
        ({"min_ratio": 0.9, "extra": 1, "other": None}, ["extra", "other"]),
        (
            {"min_ratio": 2, "late_grace_min": -1, "stats_interval_s": 0, "x": 1},
            ["late_grace_min", "min_ratio", "stats_interval_s", "x"],
        ),
    ],
)
def test_policy_problems(raw: dict[str, object], fields: list[str]) -> None:
    policy, problems = Policy.from_json(raw)
    assert policy is None
    assert sorted(problems) == fields
    assert all(isinstance(text, str) and text for text in problems.values())


def test_policy_edges_accepted() -> None:
    raw = {"late_grace_min": 0, "early_grace_min": 0, "stats_interval_s": 1}
    assert Policy.from_json(raw) == (
        Policy(late_grace_min=0, early_grace_min=0, stats_interval_s=1),
        {},
    )


def test_policy_not_an_object() -> None:
    policy, problems = Policy.from_json([1, 2])  # type: ignore[arg-type]
    assert policy is None
    assert list(problems) == ["policy"]


# --- intervals ---------------------------------------------------------------------------------


def test_interval_helpers() -> None:
    assert merge([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]) == [(1, 4), (5, 9)]
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    cover = Coverage([(0, 10), (20, 30)])
    assert cover.length == 20
    assert cover.measure([(5, 25), (29, 40)]) == 11
    assert pieces({"x": [(0, 10)], "y": [(5, 20), (30, 40)]}) == [
        ((0, 5), frozenset("x")),
        ((5, 10), frozenset("xy")),
        ((10, 20), frozenset("y")),
        ((30, 40), frozenset("y")),
    ]
    joint = Joint({"x": cover, "y": Coverage([(5, 25)])})
    assert joint.of(frozenset("x")) is cover
    assert joint.of(frozenset("xy")).spans == ((0, 30),)
    assert joint.of(frozenset("xy")) is joint.of(frozenset("yx"))
    assert sampled_up([(0, True), (5, True), (10, False), (40, True)], 15) == [(0, 10), (40, 55)]


# --- properties --------------------------------------------------------------------------------

P_START = 1_000_000
P_MEMBERS = ("a", "b", "c", "d", "e")
P_VENUES = ("M", "B1", "B2")


@st.composite
def small_sessions(draw: st.DrawFn) -> SessionInput:
    """A short session (at most 400 s) with a handful of members, check-ins and samples."""
    duration = draw(st.integers(1, 400))
    start, end = P_START, P_START + duration
    times = st.one_of(
        st.integers(start - 90, end + 90),
        st.sampled_from([start - 1, start, start + 1, end - 1, end, end + 1]),
    )
    policy = Policy(
        min_ratio=draw(st.decimals(Decimal("0.01"), Decimal(1), places=2)),
        late_grace_min=draw(st.integers(0, 3)),
        early_grace_min=draw(st.integers(0, 3)),
        require_stream_verification=draw(st.booleans()),
        stats_interval_s=draw(st.integers(1, 20)),
    )
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(P_MEMBERS),
                st.sampled_from((*P_VENUES, "X")),
                st.sampled_from(("in", "out")),
                times,
            ),
            max_size=25,
        )
    )
    samples = draw(
        st.lists(
            st.builds(
                Sample,
                st.sampled_from((*P_VENUES, "X")),
                times,
                st.sampled_from(("good", "degraded", "down")),
            ),
            max_size=40,
        )
    )
    return SessionInput(
        start=start,
        end=end,
        credit_hours=Decimal("1.5"),
        policy=policy,
        main_venue="M",
        venues=P_VENUES,
        roster=draw(st.dictionaries(st.sampled_from(P_MEMBERS), st.sampled_from(P_VENUES))),
        checkins=events(*rows),
        samples=tuple(samples),
        already_credited=draw(st.frozensets(st.sampled_from(P_MEMBERS))),
    )


def seconds_up(inp: SessionInput, venue: str) -> set[int]:
    """Brute force U_v, second by second."""
    window = range(inp.start, inp.end)
    if not inp.policy.require_stream_verification or venue == inp.main_venue:
        return set(window)
    reach = 3 * inp.policy.stats_interval_s
    up: set[int] = set()
    mine = [s for s in inp.samples if s.venue == venue]
    for x in window:
        before = [s for s in mine if s.t <= x]
        if not before:
            continue
        last = max(s.t for s in before)
        if x < last + reach and any(s.state in ("good", "degraded") for s in before if s.t == last):
            up.add(x)
    return up


def seconds_present(inp: SessionInput, member_no: str, venue: str) -> tuple[set[int], bool]:
    """Brute force P_v, second by second, and whether an out was unmatched."""
    mine = sorted(
        (e for e in inp.checkins if e.member == member_no and e.venue == venue),
        key=lambda e: (e.t, e.seq),
    )
    present: set[int] = set()
    unmatched = False
    opened: int | None = None
    for e in mine:
        if e.kind == "in" and opened is None:
            opened = e.t
        elif e.kind == "out" and opened is None:
            unmatched = True
        elif e.kind == "out" and opened is not None:
            present |= set(range(max(opened, inp.start), min(e.t, inp.end)))
            opened = None
    if opened is not None:
        present |= set(range(max(opened, inp.start), inp.end))
    return present, unmatched


def brute_force(inp: SessionInput) -> list[MemberResult]:
    """ATTENDANCE.md read literally, one second at a time."""
    up = {v: seconds_up(inp, v) for v in P_VENUES}
    results = []
    for m in P_MEMBERS:
        by_venue = {v: seconds_present(inp, m, v) for v in P_VENUES}
        presence = {v: p for v, (p, _) in by_venue.items() if p}
        flags = {"unmatched_out"} if any(u for _, u in by_venue.values()) else set()
        assigned = inp.roster.get(m)
        if not presence:
            if assigned is not None:
                results.append(
                    MemberResult(m, assigned, (), "absent", "no_checkin", 0, 0, ZERO, tuple(flags))
                )
            continue
        everywhere = set().union(*presence.values())
        verified = set().union(*(p & up[v] for v, p in presence.items()))
        threshold = Fraction(inp.policy.min_ratio) * (inp.end - inp.start)
        if min(everywhere) > inp.start + 60 * inp.policy.late_grace_min:
            flags.add("late")
        if max(everywhere) + 1 < inp.end - 60 * inp.policy.early_grace_min:
            flags.add("left_early")
        if assigned is None:
            flags.add("walk_in")
        elif set(presence) - {assigned}:
            flags.add("wrong_venue")
        if any(len(presence[v] & presence[w]) > 60 for v, w in combinations(presence, 2)):
            flags.add("conflict")
        credit = ZERO
        reason: str | None = None
        if len(verified) >= threshold:
            status = "present"
            if m in inp.already_credited:
                flags.add("repeat")
            else:
                credit = inp.credit_hours
        else:
            status = "partial"
            reason = "outage" if len(everywhere) >= threshold else "short_stay"
        results.append(
            MemberResult(
                m,
                assigned,
                tuple(sorted(presence)),
                status,
                reason,
                len(everywhere),
                len(verified),
                credit,
                tuple(sorted(flags)),
            )
        )
    return results


def by_member(result: SessionResult) -> dict[str, MemberResult]:
    """Results keyed by member."""
    return {r.member: r for r in result.members}


@settings(max_examples=300, deadline=None)
@given(small_sessions())
def test_matches_the_rules_read_second_by_second(inp: SessionInput) -> None:
    assert list(compute(inp).members) == brute_force(inp)


@settings(deadline=None)
@given(small_sessions())
def test_venues_and_summary_agree_with_members(inp: SessionInput) -> None:
    result = compute(inp)
    for v in result.venues:
        assert v.up_seconds == len(seconds_up(inp, v.venue))
        assert v.expected == sum(1 for a in inp.roster.values() if a == v.venue)
        assert v.checked_in == sum(1 for r in result.members if v.venue in r.venues)
    s = result.summary
    assert s["expected"] == len(inp.roster)
    assert s["present"] + s["partial"] + s["absent"] == len(result.members)
    assert s["walk_in"] == len(result.members) - len(inp.roster)
    assert s["conflict"] == sum(1 for r in result.members if "conflict" in r.flags)


@settings(deadline=None)
@given(
    small_sessions(),
    st.sampled_from(P_MEMBERS),
    st.sampled_from(P_VENUES),
    st.integers(P_START - 90, P_START + 500),
    st.integers(-1, 30),
)
def test_adding_an_in_never_lowers_presence(
    inp: SessionInput, m: str, venue: str, t: int, seq: int
) -> None:
    before = by_member(compute(inp))
    more = replace(inp, checkins=(*inp.checkins, CheckInEvent(m, venue, "in", t, seq)))
    after = by_member(compute(more))
    for member_no, old in before.items():
        assert after[member_no].presence_seconds >= old.presence_seconds


@settings(deadline=None)
@given(small_sessions(), st.randoms(use_true_random=False))
def test_order_of_checkins_and_samples_does_not_matter(
    inp: SessionInput, rnd: random.Random
) -> None:
    checkins, samples = list(inp.checkins), list(inp.samples)
    rnd.shuffle(checkins)
    rnd.shuffle(samples)
    assert compute(replace(inp, checkins=tuple(checkins), samples=tuple(samples))) == compute(inp)


@settings(deadline=None)
@given(small_sessions())
def test_verified_within_presence_within_duration(inp: SessionInput) -> None:
    for r in compute(inp).members:
        assert 0 <= r.verified_seconds <= r.presence_seconds <= inp.end - inp.start
        assert (r.status == "absent") == (r.presence_seconds == 0)
        assert r.credit_hours in (ZERO, inp.credit_hours)


@settings(deadline=None)
@given(small_sessions())
def test_turning_verification_off_never_lowers_verified(inp: SessionInput) -> None:
    on = replace(inp, policy=replace(inp.policy, require_stream_verification=True))
    off = replace(inp, policy=replace(inp.policy, require_stream_verification=False))
    verified_off = by_member(compute(off))
    for r in compute(on).members:
        assert verified_off[r.member].verified_seconds >= r.verified_seconds
        assert verified_off[r.member].verified_seconds == r.presence_seconds


@settings(deadline=None)
@given(small_sessions(), st.sampled_from(P_VENUES), st.integers(P_START - 90, P_START + 500))
def test_adding_a_good_sample_never_lowers_verified(inp: SessionInput, venue: str, t: int) -> None:
    before = by_member(compute(inp))
    more = replace(inp, samples=(*inp.samples, Sample(venue, t, "good")))
    for r in compute(more).members:
        assert r.verified_seconds >= before[r.member].verified_seconds


@settings(deadline=None)
@given(small_sessions())
def test_results_are_sorted_and_deterministic(inp: SessionInput) -> None:
    result = compute(inp)
    assert compute(inp) == result
    names = [r.member for r in result.members]
    assert names == sorted(set(names))
    assert [v.venue for v in result.venues] == sorted(P_VENUES)
    for r in result.members:
        assert list(r.venues) == sorted(set(r.venues))
        assert list(r.flags) == sorted(set(r.flags))
    assert set(inp.roster) <= set(names)


@settings(deadline=None)
@given(small_sessions(), st.lists(st.tuples(st.sampled_from(P_MEMBERS), st.integers())))
def test_checkins_elsewhere_change_nothing(inp: SessionInput, stray: list[tuple[str, int]]) -> None:
    extra = tuple(CheckInEvent(m, "X", "in", t, 0) for m, t in stray)
    assert compute(replace(inp, checkins=(*inp.checkins, *extra))) == compute(inp)


# --- the finalize benchmark's size -------------------------------------------------------------


def big_session(seed: int = 7) -> SessionInput:
    """20 000 expected over 200 venues, 3 h of 5 s samples at 199 branches, ~40 000 scans."""
    rnd = random.Random(seed)
    venues = ("M", *(f"B{i:03d}" for i in range(1, 200)))
    roster = {f"m{i:05d}": venues[i % len(venues)] for i in range(20_000)}
    samples = []
    for v in venues[1:]:
        outage = rnd.randrange(S, E)
        for t in range(S, E, 5):
            state = "down" if outage <= t < outage + rnd.choice((0, 300)) else "good"
            samples.append(Sample(v, t, "degraded" if rnd.random() < 0.02 else state))
    rows: list[tuple[str, str, str, int]] = []
    for m, v in roster.items():
        if rnd.random() < 0.03:
            continue
        rows.append((m, v, "in", S + rnd.randrange(-1_800, 2_400)))
        rows.append((m, v, "out", E - rnd.randrange(-1_800, 2_400)))
        if rnd.random() < 0.01:
            rows.append((m, rnd.choice(venues), "in", S + rnd.randrange(D)))
    for i in range(200):
        rows.append((f"w{i:03d}", rnd.choice(venues), "in", S + rnd.randrange(D)))
    rnd.shuffle(rows)
    return SessionInput(
        start=S,
        end=E,
        credit_hours=THREE,
        policy=DEFAULT_POLICY,
        main_venue="M",
        venues=venues,
        roster=roster,
        checkins=events(*rows),
        samples=tuple(samples),
        already_credited=frozenset(rnd.sample(sorted(roster), 500)),
    )


def test_finalize_benchmark_size() -> None:
    inp = big_session()
    assert len(inp.samples) == 199 * D // 5
    assert 38_000 < len(inp.checkins) < 42_000
    result = compute(inp)
    assert len(result.venues) == 200
    assert len(result.members) == 20_000 + 200
    s = result.summary
    assert (s["expected"], s["walk_in"]) == (20_000, 200)
    assert s["present"] + s["partial"] + s["absent"] == 20_200
    assert s["present"] > 0 and s["partial"] > 0 and s["absent"] > 0
    assert sum(v.expected for v in result.venues) == 20_000
