"""Half-open integer intervals [a, b): merging, measuring and intersecting sorted lists of them."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

Interval = tuple[int, int]


def merge(spans: Iterable[Interval]) -> list[Interval]:
    """Sort and join overlapping or touching intervals, dropping empty ones."""
    merged: list[Interval] = []
    for a, b in sorted(spans):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def clip(spans: Iterable[Interval], start: int, end: int) -> list[Interval]:
    """Each interval cut to [start, end), empty ones dropped; the order is kept."""
    clipped: list[Interval] = []
    for a, b in spans:
        lo = a if a > start else start
        hi = b if b < end else end
        if lo < hi:
            clipped.append((lo, hi))
    return clipped


def total(spans: Iterable[Interval]) -> int:
    """The summed length of intervals (their measure when they are disjoint)."""
    return sum(b - a for a, b in spans)


def intersect(left: Sequence[Interval], right: Sequence[Interval]) -> list[Interval]:
    """The common part of two sorted lists of disjoint intervals, walked with two pointers."""
    common: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a = max(left[i][0], right[j][0])
        b = min(left[i][1], right[j][1])
        if a < b:
            common.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return common


def overlap(left: Sequence[Interval], right: Sequence[Interval]) -> int:
    """How long two sorted lists of disjoint intervals overlap."""
    return total(intersect(left, right))


def pieces(spans_by_key: Mapping[str, Sequence[Interval]]) -> list[tuple[Interval, frozenset[str]]]:
    """Cut the union of keyed lists of disjoint intervals into pieces, each with its keys."""
    edges = sorted(
        (x, rise, key)
        for key, spans in spans_by_key.items()
        for a, b in spans
        for x, rise in ((a, 1), (b, 0))
    )
    cut: list[tuple[Interval, frozenset[str]]] = []
    active: set[str] = set()
    last = 0
    for x, rise, key in edges:
        if active and x > last:
            cut.append(((last, x), frozenset(active)))
        if rise:
            active.add(key)
        else:
            active.discard(key)
        last = x
    return cut


def sampled_up(points: Sequence[tuple[int, bool]], reach: int) -> list[Interval]:
    """Up time from samples sorted by time: each covers [t, min(t_next, t + reach)).

    Several samples at the same second count as one, up when any of them is up: the result then
    does not depend on their order.
    """
    spans: list[Interval] = []
    if not points:
        return spans
    cur_a = cur_b = 0
    opened = False
    prev_t, prev_up = points[0]
    for t, up in points[1:]:
        if t == prev_t:
            prev_up = prev_up or up
            continue
        if prev_up:
            stop = t if t < prev_t + reach else prev_t + reach
            if opened and prev_t <= cur_b:
                cur_b = stop
            else:
                if opened:
                    spans.append((cur_a, cur_b))
                cur_a, cur_b, opened = prev_t, stop, True
        prev_t, prev_up = t, up
    if prev_up:
        if opened and prev_t <= cur_b:
            cur_b = prev_t + reach
        else:
            if opened:
                spans.append((cur_a, cur_b))
            cur_a, cur_b, opened = prev_t, prev_t + reach, True
    if opened:
        spans.append((cur_a, cur_b))
    return spans


class Coverage:
    """Sorted disjoint intervals with running totals: any window's covered length in O(log n)."""

    __slots__ = ("_before", "_ends", "_starts", "spans")

    def __init__(self, spans: Sequence[Interval]) -> None:
        """Take intervals that are already sorted, disjoint and non-empty (as `merge` returns)."""
        self.spans: tuple[Interval, ...] = tuple(spans)
        self._starts = [a for a, _ in self.spans]
        self._ends = [b for _, b in self.spans]
        before = [0]
        for a, b in self.spans:
            before.append(before[-1] + b - a)
        self._before = before

    @property
    def length(self) -> int:
        """The covered length in all."""
        return self._before[-1]

    def _upto(self, x: int) -> int:
        """The covered length below x."""
        i = bisect_right(self._starts, x)
        if i == 0:
            return 0
        end = self._ends[i - 1]
        return self._before[i - 1] + (x if x < end else end) - self._starts[i - 1]

    def measure(self, spans: Iterable[Interval]) -> int:
        """The covered length inside disjoint intervals."""
        return sum(self._upto(b) - self._upto(a) for a, b in spans if a < b)


class Joint:
    """Coverages by key, and the union of any set of them, built once per set when first asked."""

    __slots__ = ("_unions", "by_key")

    def __init__(self, by_key: Mapping[str, Coverage]) -> None:
        """Take one coverage per key."""
        self.by_key = dict(by_key)
        self._unions: dict[frozenset[str], Coverage] = {}

    def of(self, keys: frozenset[str]) -> Coverage:
        """The coverage of these keys together."""
        if len(keys) == 1:
            (key,) = keys
            return self.by_key[key]
        found = self._unions.get(keys)
        if found is None:
            found = Coverage(merge(chain.from_iterable(self.by_key[k].spans for k in keys)))
            self._unions[keys] = found
        return found
