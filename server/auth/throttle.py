"""Login throttling per account and per client address, in a sliding window."""

from __future__ import annotations

import math
from collections import deque


class LoginThrottle:
    """Counts failed logins; past the limit, further tries wait until the window slides."""

    def __init__(self, per_user: int, per_address: int, window_s: int, max_keys: int = 50_000):
        self._limits = {"user": per_user, "addr": per_address}
        self._window = window_s
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, username: str, address: str, now: float) -> int | None:
        """Seconds to wait when either the account or the address is over its limit."""
        waits = [
            self._wait(("user", username.lower()), now),
            self._wait(("addr", address), now),
        ]
        worst = max(waits)
        return worst if worst > 0 else None

    def record_failure(self, username: str, address: str, now: float) -> None:
        """Remember one failed try for both keys."""
        if len(self._failures) >= self._max_keys:
            self._evict(now)
        for key in (("user", username.lower()), ("addr", address)):
            self._failures.setdefault(key, deque()).append(now)

    def record_success(self, username: str) -> None:
        """A correct password clears the account's failures (not the address's)."""
        self._failures.pop(("user", username.lower()), None)

    def _wait(self, key: tuple[str, str], now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) < self._limits[key[0]]:
            return 0
        return max(1, math.ceil(times[0] + self._window - now))

    def _evict(self, now: float) -> None:
        stale = [
            key
            for key, times in self._failures.items()
            if not times or times[-1] <= now - self._window
        ]
        for key in stale:
            del self._failures[key]
        if len(self._failures) >= self._max_keys:
            self._failures.clear()
