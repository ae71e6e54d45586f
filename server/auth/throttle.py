"""Login throttling: a lock per account, a back-off per client address, tries in flight counted."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

Key = tuple[str, str]
BACKOFF_FIRST_S = 2
BACKOFF_CAP_S = 60


@dataclass(frozen=True)
class Refused:
    """A try turned away before its password was checked: wait this many seconds."""

    retry_after: int


class Attempt:
    """One admitted try. It holds a place in its account's limit (and its address's, unless the
    browser is known) until it is settled: failed, succeeded or abandoned, once; later calls do
    nothing, so `abandon()` in a `finally` is always safe."""

    def __init__(self, throttle: LoginThrottle, user: Key, addr: Key, held: tuple[Key, ...]):
        self._throttle = throttle
        self._user = user
        self._addr = addr
        self._held: tuple[Key, ...] = held

    def failed(self, now: float) -> None:
        """Wrong password or unknown user: a failure of both the account and the address."""
        if self._release():
            self._throttle.record_failure(self._user, self._addr, now)

    def succeeded(self) -> None:
        """The right password: the account's failures are forgiven (not the address's)."""
        if self._release():
            self._throttle.forgive(self._user)

    def abandon(self) -> None:
        """The try ended before an answer (an error): it frees its place and counts for nothing."""
        self._release()

    def _release(self) -> bool:
        held, self._held = self._held, ()
        self._throttle.release(held)
        return bool(held)


class LoginThrottle:
    """Counts failed sign-ins in a sliding window, per account and per client address.

    Account: after `per_user` failures in the window the account is locked until the oldest one
    slides out — for every browser and the right password too, so one account's password cannot
    be guessed from anywhere faster than that.

    Address: `per_address` failures in the window are free; past them the address backs off:
    its next try must wait 2 s after its last failure, then 4, 8 … at most BACKOFF_CAP_S. A lock
    for the whole window would shut out everyone behind a reverse proxy (they all share its
    address; see HETANG_TRUSTED_PROXIES); a back-off still holds a guesser who sprays a password
    over many accounts to about one try a minute. The back-off cannot simply wave a correct
    password through: before it is checked it cannot be told from a guess, and checking guesses
    at full speed would tell the guesser at full speed when he is right. What does tell them
    apart is the browser: one that has signed in to the account before carries a signed
    known-browser cookie for it (server/auth/devices.py) and skips its address's back-off, so
    other accounts' failures never hold it up; its account's own lock still applies.

    Tries in flight count against both limits, and `begin` checks and takes the place in one
    step (no await between), so parallel tries cannot all pass before any failure is recorded.
    """

    def __init__(self, per_user: int, per_address: int, window_s: int, max_keys: int = 50_000):
        self._per_user = per_user
        self._per_address = per_address
        self._window = window_s
        self._max_keys = max_keys
        self._failures: dict[Key, deque[float]] = {}
        self._pending: dict[Key, int] = {}

    def begin(
        self, username: str, address: str, now: float, *, known_device: bool = False
    ) -> Attempt | Refused:
        """Admit a try (holding its place) or refuse it with the seconds to wait."""
        user, addr = ("user", username.lower()), ("addr", address)
        wait = self._account_wait(user, now)
        if not known_device:
            wait = max(wait, self._address_wait(addr, now))
        if wait > 0:
            return Refused(wait)
        held = (user,) if known_device else (user, addr)
        for key in held:
            self._pending[key] = self._pending.get(key, 0) + 1
        return Attempt(self, user, addr, held)

    def record_failure(self, user: Key, addr: Key, now: float) -> None:
        """Remember one failed try for both keys."""
        if len(self._failures) >= self._max_keys:
            self._evict(now)
        for key in (user, addr):
            self._failures.setdefault(key, deque()).append(now)

    def forgive(self, user: Key) -> None:
        """A correct password clears the account's failures."""
        self._failures.pop(user, None)

    def release(self, held: tuple[Key, ...]) -> None:
        """Give back the places of a settled try."""
        for key in held:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def _recent(self, key: Key, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def _account_wait(self, key: Key, now: float) -> int:
        times = self._recent(key, now)
        if len(times) + self._pending.get(key, 0) < self._per_user:
            return 0
        if len(times) < self._per_user:
            return 1  # the limit is full of tries in flight: their answers come in a moment
        # Locked until enough failures slide out of the window to leave a free place.
        return max(1, math.ceil(times[len(times) - self._per_user] + self._window - now))

    def _address_wait(self, key: Key, now: float) -> int:
        times = self._recent(key, now)
        pending = self._pending.get(key, 0)
        over = len(times) + pending - self._per_address
        if over < 0:
            return 0
        delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S << min(over, 16))
        if pending:
            return delay  # one try at a time while backing off; the one in flight may fail
        return max(0, math.ceil(times[-1] + delay - now)) if times else 0

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
