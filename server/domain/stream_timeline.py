"""A branch venue's stream over a session window, cut into spans of one state each: what the
reviewer's timeline draws. A sample vouches for its time as ATTENDANCE.md §2 says (at `t` it
covers [t, min(t_next, t + reach))); what no sample covers has no report; time between
broadcasts is off the air; and once the session was ended no sample vouches for anything
(server/domain/attendance.py `up_time` and `vouched_window`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from server.domain.attendance import SAMPLE_REACH, Policy, vouched_window
from server.domain.intervals import Interval, intersect
from server.domain.vocabulary import STREAM_STATES, UP_STATES

NO_SAMPLE = "none"  # time no sample covers: counted as down (ATTENDANCE.md §2)
Run = tuple[int, int, str]  # [a, b) in one state
OFF_AIR = "off_air"  # time before, between or after the broadcasts: no sample vouches for it
ENDED = "ended"  # time of the window after the session was ended: counted as down
TIMELINE_STATES = (*STREAM_STATES, NO_SAMPLE, OFF_AIR, ENDED)
SHOWN_WHEN_DRAWN = frozenset({OFF_AIR, ENDED})  # legend entries only when a bar shows them
# The words a reviewer reads for each state (the venue wall's words for the stream's states).
TIMELINE_STATE_LABELS = MappingProxyType(
    {
        "good": "Good",
        "degraded": "Stuttering",
        "down": "Interrupted",
        NO_SAMPLE: "No report",
        OFF_AIR: "Not on air",
        ENDED: "Session ended",
    }
)


@dataclass(frozen=True)
class StreamSpan:
    """[start, end) in epoch seconds, in one state."""

    start: int
    end: int
    state: str

    @property
    def seconds(self) -> int:
        """How long the span lasts."""
        return self.end - self.start

    @property
    def up(self) -> bool:
        """Whether the span counts as stream time (good or degraded)."""
        return self.state in UP_STATES


def sample_reach(policy: Policy) -> int:
    """How many seconds one sample vouches for at most under the session's policy."""
    return SAMPLE_REACH * policy.stats_interval_s


def stream_spans(
    points: Iterable[tuple[int, str]],
    start: int,
    end: int,
    reach: int,
    ended_at: int | None = None,
    on_air: Sequence[tuple[int, int | None]] = (),
) -> tuple[StreamSpan, ...]:
    """[start, end) cut into spans from samples `(t, state)` sorted by t: each sample covers
    [t, min(t_next, t + reach)); uncovered time is NO_SAMPLE, time outside the broadcast's
    `on_air` spans (where any were recorded) is OFF_AIR, and time from `ended_at` on is ENDED.
    Neighbouring spans of one state are joined, so the spans cover the window exactly, in
    order, with no two alike side by side. Of two samples at the same second the later one
    speaks (the table holds one per second)."""
    cut = end if ended_at is None else max(start, min(end, ended_at))
    # Plain ints in one loop: a hundred branches of a three-hour session are 216 000 samples.
    runs: list[Run] = []
    run_a = run_b = start  # the run being drawn, [run_a, run_b) in run_state; none yet
    run_state = NO_SAMPLE
    ordered: Sequence[tuple[int, str]] = list(points)
    last = len(ordered) - 1
    for index, (t, state) in enumerate(ordered):
        stop = t + reach
        if index < last and ordered[index + 1][0] < stop:
            stop = ordered[index + 1][0]
        a, b = max(t, start), min(stop, cut)
        if a >= b:
            continue
        if a > run_b:  # nothing vouched for the time since the run's end
            if run_state != NO_SAMPLE:
                runs.append((run_a, run_b, run_state))
                run_a, run_state = run_b, NO_SAMPLE
            run_b = a
        if state == run_state:
            run_b = b
            continue
        if run_b > run_a:
            runs.append((run_a, run_b, run_state))
        run_a, run_b, run_state = a, b, state
    if cut > run_b:
        if run_state != NO_SAMPLE:
            runs.append((run_a, run_b, run_state))
            run_a, run_state = run_b, NO_SAMPLE
        run_b = cut
    if run_b > run_a:
        runs.append((run_a, run_b, run_state))
    if on_air:
        runs = _off_air(runs, vouched_window(start, end, ended_at, on_air))
    if cut < end:
        runs.append((cut, end, ENDED))
    return tuple(StreamSpan(a, b, state) for a, b, state in runs)


def _off_air(runs: list[Run], vouched: list[Interval]) -> list[Run]:
    """The runs with every part outside `vouched` (sorted, disjoint) made OFF_AIR, neighbours of
    one state joined again."""
    cut: list[Run] = []
    for a, b, state in runs:
        at = a
        for lo, hi in intersect([(a, b)], vouched):
            cut.extend(((at, lo, OFF_AIR), (lo, hi, state)))
            at = hi
        cut.append((at, b, OFF_AIR))
    joined: list[Run] = []
    for a, b, state in cut:
        if a >= b:
            continue
        if joined and joined[-1][2] == state:
            joined[-1] = (joined[-1][0], b, state)
        else:
            joined.append((a, b, state))
    return joined
