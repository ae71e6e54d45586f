"""Password hashing with argon2id, off the event loop and with bounded concurrency."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8


class PasswordService:
    """Hashes and verifies passwords; at most `concurrency` hashes run at once."""

    def __init__(self, concurrency: int = 2) -> None:
        self._hasher = PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        # Verifying against this when the user is unknown keeps both answers equally slow. Made
        # on the first such sign-in, not at start-up: one argon2 hash costs a third of a second.
        self._dummy: str | None = None

    def hash_sync(self, password: str) -> str:
        """Hash now, on this thread (CLI use)."""
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        """Hash in a worker thread."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when the password matches; an unknown user (None) costs the same time."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        if stored is None and self._dummy is None:
            self._dummy = self._hasher.hash("hetang-dummy-password")
        try:
            self._hasher.verify(stored or self._dummy or "", password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None
