"""How far the server's clock is from ours, measured from round trips (Cristian's method, as NTP
clients filter it): each answer that carries `server_time` gives one sample; the estimate is the
sample of the lowest round-trip time among the recent ones. Pure: the caller reads the clocks."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW = 12  # samples kept: at one heartbeat every 15 s, the last three minutes or so
MAX_AGE_S = 600.0  # an older sample no longer says where the clocks are (they drift)


@dataclass(frozen=True)
class ClockSample:
    """One round trip: the offset it suggests (server − agent) and how much to trust it (its
    error is at most half the round trip)."""

    offset_s: float
    rtt_s: float
    taken_at: float  # monotonic seconds, for ageing


def sample_of(
    sent_wall: float, received_wall: float, server_wall: float, rtt_s: float, taken_at: float
) -> ClockSample | None:
    """The sample of one exchange: sent and received on our wall clock, the server's time in
    its answer (all epoch seconds), and the round trip measured on the monotonic clock (the wall
    clock may be stepped meanwhile). None for an exchange that measured nothing usable."""
    if not rtt_s >= 0.0 or received_wall < sent_wall:  # `not >=` also catches NaN
        return None
    return ClockSample(server_wall - (sent_wall + received_wall) / 2.0, rtt_s, taken_at)


class ClockEstimate:
    """The recent samples, and the offset they agree on best."""

    def __init__(self, window: int = WINDOW, max_age_s: float = MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._samples: deque[ClockSample] = deque(maxlen=window)

    def add(self, sample: ClockSample) -> None:
        """Keep a sample (the oldest falls out of the window)."""
        self._samples.append(sample)

    def best(self, now: float) -> ClockSample | None:
        """The sample of the shortest round trip among those younger than max_age_s at `now`
        (monotonic seconds); a tie goes to the newer one."""
        fresh = [s for s in self._samples if now - s.taken_at <= self.max_age_s]
        if not fresh:
            return None
        return min(reversed(fresh), key=lambda s: s.rtt_s)

    def offset_ms(self, now: float) -> int | None:
        """server − agent in whole milliseconds, or None without a fresh sample."""
        sample = self.best(now)
        return None if sample is None else round(sample.offset_s * 1000.0)
