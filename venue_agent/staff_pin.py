"""The staff page's optional PIN: a salted digest in memory, a constant-time check, a back-off
after wrong PINs, and the cookie a right PIN earns."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_LENGTH = 4
MAX_LENGTH = 128
FREE_FAILURES = 5  # wrong PINs in a row heard at once; then each try waits 2, 4, 8 … s
MAX_WAIT_S = 300.0
FORGET_S = 900.0  # wrong PINs this old no longer count
COOKIE_PREFIX = "hetang_staff_"  # + the port: cookies are shared by every port of a host


class StaffPin:
    """The PIN as a salted digest (never the PIN itself), compared in constant time."""

    def __init__(self, pin: str) -> None:
        self._salt = secrets.token_bytes(16)
        self._digest = self._hash(pin)

    def _hash(self, pin: str) -> bytes:
        return hmac.new(self._salt, pin.encode("utf-8"), hashlib.sha256).digest()

    def matches(self, candidate: str) -> bool:
        """True when the candidate is the PIN."""
        return hmac.compare_digest(self._hash(candidate), self._digest)

    def __repr__(self) -> str:
        return "StaffPin(…)"


class PinThrottle:
    """Wrong PINs in a row, and how long the next try must wait (every local process shares
    127.0.0.1, so the count is one for the whole page)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures = 0
        self._last = 0.0

    def wait_s(self) -> float:
        """Seconds before the next try is heard; 0 when it is heard now."""
        now = self._clock()
        if self._failures and now - self._last >= FORGET_S:
            self._failures = 0
        if self._failures < FREE_FAILURES:
            return 0.0
        wait = min(2.0 ** (self._failures - FREE_FAILURES + 1), MAX_WAIT_S)
        return max(0.0, self._last + wait - now)

    def failed(self) -> None:
        """A wrong PIN."""
        self._failures += 1
        self._last = self._clock()

    def succeeded(self) -> None:
        """The right PIN: the count starts again."""
        self._failures = 0


@dataclass(frozen=True)
class PinAnswer:
    """What a try at the PIN came to: admitted, wrong, or not heard for `retry_after_s`."""

    admitted: bool
    retry_after_s: float = 0.0


class StaffGate:
    """Who may use the staff page: whoever shows the cookie a right PIN earned from this process
    (a restarted agent asks again)."""

    def __init__(self, pin: StaffPin, port: int, throttle: PinThrottle | None = None) -> None:
        self._pin = pin
        self._throttle = throttle or PinThrottle()
        self._pass = secrets.token_urlsafe(32)
        self.cookie_name = f"{COOKIE_PREFIX}{port}"

    @property
    def cookie_value(self) -> str:
        """What the cookie holds once a right PIN was given."""
        return self._pass

    def admits(self, cookie: str | None) -> bool:
        """True when the request's cookie is the one this process gave out."""
        if cookie is None:
            return False
        # Bytes: compare_digest refuses a str that is not ASCII, and a cookie is anyone's to send.
        return hmac.compare_digest(cookie.encode("utf-8", "replace"), self._pass.encode("ascii"))

    def try_pin(self, candidate: str) -> PinAnswer:
        """Check a PIN unless wrong ones came too fast (then it is not even compared)."""
        wait = self._throttle.wait_s()
        if wait > 0:
            return PinAnswer(admitted=False, retry_after_s=wait)
        if self._pin.matches(candidate):
            self._throttle.succeeded()
            return PinAnswer(admitted=True)
        self._throttle.failed()
        return PinAnswer(admitted=False)
