"""Attendance and credit rules (ATTENDANCE.md): check-ins and stream samples in, results out."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import chain, combinations, groupby
from typing import NamedTuple

from server.domain.intervals import (
    Coverage,
    Interval,
    Joint,
    clip,
    intersect,
    merge,
    overlap,
    pieces,
    sampled_up,
    total,
)
from server.domain.vocabulary import CHECKIN_KINDS, UP_STATES

POLICY_FIELDS = (
    "min_ratio",
    "late_grace_min",
    "early_grace_min",
    "require_stream_verification",
    "stats_interval_s",
)
SAMPLE_REACH = 3  # a sample vouches for at most three stats intervals
CONFLICT_OVERLAP_S = 60
MAX_STATS_INTERVAL_S = 3600
MAX_RATIO_TEXT = 64
ZERO = Decimal(0)

UNKNOWN_FIELD = "is not a policy field"
NOT_OBJECT = "must be an object"
NOT_NUMBER = "must be a number"
NOT_WHOLE = "must be a whole number"
NOT_BOOL = "must be true or false"
RATIO_RANGE = "must be more than 0 and at most 1"
NEGATIVE = "must not be negative"
INTERVAL_RANGE = f"must be between 1 and {MAX_STATS_INTERVAL_S}"


@dataclass(frozen=True)
class Policy:
    """A session's attendance policy; the defaults are ATTENDANCE.md's."""

    min_ratio: Decimal = Decimal("0.8")
    late_grace_min: int = 10
    early_grace_min: int = 10
    require_stream_verification: bool = True
    stats_interval_s: int = 5

    @classmethod
    def from_json(cls, raw: Mapping[str, object] | None) -> tuple[Policy | None, dict[str, str]]:
        """A policy from its JSON form, or None and the problems by field; absent fields default."""
        if raw is None:
            return cls(), {}
        if not isinstance(raw, Mapping):
            return None, {"policy": NOT_OBJECT}
        problems = {str(key): UNKNOWN_FIELD for key in raw if key not in POLICY_FIELDS}
        base = cls()
        ratio = _ratio(raw.get("min_ratio"), base.min_ratio, problems)
        late = _whole(raw, "late_grace_min", base.late_grace_min, 0, None, problems)
        early = _whole(raw, "early_grace_min", base.early_grace_min, 0, None, problems)
        interval = _whole(
            raw, "stats_interval_s", base.stats_interval_s, 1, MAX_STATS_INTERVAL_S, problems
        )
        verify = raw.get("require_stream_verification")
        if verify is None:
            verify = base.require_stream_verification
        elif not isinstance(verify, bool):
            problems["require_stream_verification"] = NOT_BOOL
        if problems or ratio is None or late is None or early is None or interval is None:
            return None, problems
        return cls(ratio, late, early, bool(verify), interval), problems

    def to_json(self) -> dict[str, object]:
        """The JSON form that `from_json` reads back."""
        return {
            "min_ratio": float(self.min_ratio),
            "late_grace_min": self.late_grace_min,
            "early_grace_min": self.early_grace_min,
            "require_stream_verification": self.require_stream_verification,
            "stats_interval_s": self.stats_interval_s,
        }


DEFAULT_POLICY = Policy()


def _ratio(value: object, default: Decimal, problems: dict[str, str]) -> Decimal | None:
    """min_ratio as an exact Decimal in (0, 1], from a number or a numeric string."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        problems["min_ratio"] = NOT_NUMBER
        return None
    if isinstance(value, str) and len(value) > MAX_RATIO_TEXT:
        problems["min_ratio"] = NOT_NUMBER
        return None
    try:
        # Decimal(str(float)) keeps what the user wrote (0.7), not the binary double behind it.
        ratio = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        problems["min_ratio"] = NOT_NUMBER
        return None
    if not ratio.is_finite():
        problems["min_ratio"] = NOT_NUMBER
        return None
    if not 0 < ratio <= 1:
        problems["min_ratio"] = RATIO_RANGE
        return None
    return ratio


def _whole(
    raw: Mapping[str, object],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: dict[str, str],
) -> int | None:
    """A whole-number field within [low, high]."""
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems[name] = NOT_WHOLE
        return None
    if value < low or (high is not None and value > high):
        problems[name] = INTERVAL_RANGE if high is not None else NEGATIVE
        return None
    return value


class CheckInEvent(NamedTuple):
    """One accepted check-in: `t` already clock-corrected and truncated; `seq` is arrival order.

    A NamedTuple rather than a dataclass: a big session has hundreds of thousands of inputs."""

    member: str
    venue: str
    kind: str
    t: int
    seq: int


class Sample(NamedTuple):
    """One stream-health reading of a venue."""

    venue: str
    t: int
    state: str


@dataclass(frozen=True)
class SessionInput:
    """Everything the rules need about one session, as plain values."""

    start: int
    end: int
    credit_hours: Decimal
    policy: Policy
    main_venue: str
    venues: tuple[str, ...]
    roster: Mapping[str, str]
    checkins: Sequence[CheckInEvent]
    samples: Sequence[Sample]
    already_credited: frozenset[str]
    # Walk-ins from outside the session's organizations whose credit nobody has accepted yet:
    # kept and judged, flagged `outside_scope`, never credited (the caller decides who they are).
    outside_scope: frozenset[str] = frozenset()
    # When the session was ended (the operator's End, or the clock's), None before: the lesson
    # is over then and no broadcast can start again, so no branch venue's sample vouches for
    # later time, whether or not the agent's last `down` sample has arrived yet.
    ended_at: int | None = None
    # When the broadcast was on air: (start, end) spans, end None while it still is. A branch
    # venue's samples vouch only for these (a last `good` sample does not reach past 结束直播);
    # none recorded (sessions from before they were) cuts nothing.
    on_air: tuple[tuple[int, int | None], ...] = ()
    # A make-up session (补学) plays a recording: its origin is the file, not the main venue,
    # so every venue, the main one too, is up only where its own samples say so.
    replay: bool = False


@dataclass(frozen=True)
class MemberResult:
    """One member's attendance in a session."""

    member: str
    assigned_venue: str | None
    venues: tuple[str, ...]
    status: str
    reason: str | None
    presence_seconds: int
    verified_seconds: int
    credit_hours: Decimal
    flags: tuple[str, ...]


@dataclass(frozen=True)
class VenueResult:
    """One venue's counts and stream up time in a session."""

    venue: str
    role: str
    expected: int
    checked_in: int
    up_seconds: int


@dataclass(frozen=True)
class SessionResult:
    """The results of a whole session, sorted."""

    members: tuple[MemberResult, ...]
    venues: tuple[VenueResult, ...]
    summary: Mapping[str, int]


@dataclass(frozen=True)
class _Rules:
    """The per-session constants every member is judged by."""

    need: int  # the least whole number of seconds >= min_ratio × D
    late_after: int
    early_before: int
    credit: Decimal
    up: Joint
    already_credited: frozenset[str]
    outside_scope: frozenset[str]


def threshold_seconds(min_ratio: Decimal, duration: int) -> int:
    """The least whole number of seconds ≥ min_ratio × D, computed exactly (no float)."""
    return math.ceil(Fraction(min_ratio) * duration)


def walk(events: Iterable[CheckInEvent], start: int, end: int) -> tuple[list[Interval], bool]:
    """Presence at one venue from check-ins sorted by (t, seq); True when an `out` was unmatched."""
    spans: list[Interval] = []
    unmatched = False
    opened: int | None = None
    for event in events:
        if event.kind == "in":
            if opened is None:
                opened = event.t
        elif opened is None:
            unmatched = True
        else:
            spans.append((opened, event.t))
            opened = None
    if opened is not None:
        spans.append((opened, end))
    return merge(clip(spans, start, end)), unmatched


def vouched_window(
    start: int, end: int, ended_at: int | None, on_air: Sequence[tuple[int, int | None]]
) -> list[Interval]:
    """The part of [S, E) a branch venue's samples may vouch for: up to the moment the session
    was ended, and only while the broadcast was on air (all of it where no span was recorded)."""
    until = end if ended_at is None else min(end, ended_at)
    spans = on_air or ((start, until),)
    return merge(clip(((a, until if b is None else b) for a, b in spans), start, until))


def up_time(inp: SessionInput, venues: Iterable[str]) -> dict[str, Coverage]:
    """U_v of every venue: the whole window for the main venue of a live lesson or without
    verification; a receiving venue's samples (every venue of a make-up) vouch for [S, E) up
    to the moment the session was ended, and only while the broadcast was on air (where that
    was recorded)."""
    window = Coverage([(inp.start, inp.end)] if inp.start < inp.end else [])
    if not inp.policy.require_stream_verification:
        return dict.fromkeys(venues, window)
    origin = None if inp.replay else inp.main_venue
    points: dict[str, list[tuple[int, bool]]] = {v: [] for v in venues if v != origin}
    for sample in inp.samples:
        bucket = points.get(sample.venue)
        if bucket is not None:
            bucket.append((sample.t, sample.state in UP_STATES))
    reach = SAMPLE_REACH * inp.policy.stats_interval_s
    vouched = vouched_window(inp.start, inp.end, inp.ended_at, inp.on_air)
    up = {v: Coverage(intersect(sampled_up(sorted(p), reach), vouched)) for v, p in points.items()}
    if origin is not None:
        up[origin] = window
    return up


def presence_by_member(
    checkins: Iterable[CheckInEvent], venues: frozenset[str], start: int, end: int
) -> dict[str, tuple[dict[str, list[Interval]], bool]]:
    """Each member with check-ins: presence by venue (non-empty only) and the unmatched_out flag."""
    known = sorted(
        (e for e in checkins if e.venue in venues and e.kind in CHECKIN_KINDS),
        key=lambda e: (e.member, e.venue, e.t, e.seq),
    )
    found: dict[str, tuple[dict[str, list[Interval]], bool]] = {}
    for member, events in groupby(known, key=lambda e: e.member):
        by_venue: dict[str, list[Interval]] = {}
        unmatched = False
        for venue, at_venue in groupby(events, key=lambda e: e.venue):
            spans, lost = walk(at_venue, start, end)
            unmatched = unmatched or lost
            if spans:
                by_venue[venue] = spans
        found[member] = (by_venue, unmatched)
    return found


def judge(
    member: str,
    assigned: str | None,
    presence: Mapping[str, list[Interval]],
    unmatched: bool,
    rules: _Rules,
) -> MemberResult:
    """Status, reason, flags and credit of one member from their presence by venue."""
    flags = {"unmatched_out"} if unmatched else set()
    if not presence:
        return MemberResult(
            member, assigned, (), "absent", "no_checkin", 0, 0, ZERO, tuple(sorted(flags))
        )
    at = tuple(sorted(presence))
    union = merge(chain.from_iterable(presence.values()))
    presence_s = total(union)
    if len(at) == 1:
        verified_s = rules.up.of(frozenset(at)).measure(union)
    else:
        # Where several venues overlap, any of their streams vouches for the time.
        verified_s = sum(rules.up.of(keys).measure((piece,)) for piece, keys in pieces(presence))
        pairs = combinations(at, 2)
        if any(overlap(presence[v], presence[w]) > CONFLICT_OVERLAP_S for v, w in pairs):
            flags.add("conflict")
    if union[0][0] > rules.late_after:
        flags.add("late")
    if union[-1][1] < rules.early_before:
        flags.add("left_early")
    if assigned is None:
        flags.add("walk_in")
        if member in rules.outside_scope:
            flags.add("outside_scope")
    elif any(v != assigned for v in at):
        flags.add("wrong_venue")
    credit = ZERO
    if verified_s >= rules.need:
        status, reason = "present", None
        if "outside_scope" in flags:
            pass  # judged and shown, but credited only once someone entitled accepts it
        elif member in rules.already_credited:
            flags.add("repeat")
        else:
            credit = rules.credit
    else:
        status = "partial"
        reason = "outage" if presence_s >= rules.need else "short_stay"
    return MemberResult(
        member, assigned, at, status, reason, presence_s, verified_s, credit, tuple(sorted(flags))
    )


def outside_walk_ins(
    walk_ins: Mapping[str, str],
    venues_of: Mapping[str, Iterable[str]],
    organizer_path: str,
    venue_paths: Mapping[str, str],
) -> frozenset[str]:
    """The walk-ins (member → their organization's path) from outside the session's
    organizations: in neither the organizer's subtree nor the subtree of the organization of a
    venue where they checked in. A branch venue vouches for its own organization's members only:
    any venue of the city may be named a branch without its organization's consent."""
    return frozenset(
        member
        for member, path in walk_ins.items()
        if not path.startswith(organizer_path)
        and not any(path.startswith(venue_paths[v]) for v in venues_of.get(member, ()))
    )


def compute(inp: SessionInput) -> SessionResult:
    """Judge every roster member and walk-in of a session, and count by venue (ATTENDANCE.md)."""
    venues = sorted({*inp.venues, inp.main_venue})
    policy = inp.policy
    rules = _Rules(
        need=threshold_seconds(policy.min_ratio, max(0, inp.end - inp.start)),
        late_after=inp.start + policy.late_grace_min * 60,
        early_before=inp.end - policy.early_grace_min * 60,
        credit=inp.credit_hours,
        up=Joint(up_time(inp, venues)),
        already_credited=inp.already_credited,
        outside_scope=inp.outside_scope,
    )
    found = presence_by_member(inp.checkins, frozenset(venues), inp.start, inp.end)
    # Walk-ins are those off the roster with presence; a stray scan that gives none is not a result.
    walk_ins = {m for m, (by_venue, _) in found.items() if by_venue and m not in inp.roster}
    no_checkins: tuple[dict[str, list[Interval]], bool] = ({}, False)
    members = tuple(
        judge(m, inp.roster.get(m), *found.get(m, no_checkins), rules)
        for m in sorted(inp.roster.keys() | walk_ins)
    )
    expected = Counter(inp.roster.values())
    checked_in = Counter(chain.from_iterable(r.venues for r in members))
    venue_results = tuple(
        VenueResult(
            v,
            "main" if v == inp.main_venue else "branch",
            expected[v],
            checked_in[v],
            rules.up.by_key[v].length,
        )
        for v in venues
    )
    statuses = Counter(r.status for r in members)
    flagged = Counter(chain.from_iterable(r.flags for r in members))
    summary = {
        "expected": len(inp.roster),
        "present": statuses["present"],
        "partial": statuses["partial"],
        "absent": statuses["absent"],
        "walk_in": flagged["walk_in"],
        "conflict": flagged["conflict"],
    }
    return SessionResult(members, venue_results, summary)
