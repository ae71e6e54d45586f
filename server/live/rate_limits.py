"""Counting tries in fixed windows, shared by every server process through Redis when it is
configured (else in this process): self check-in's limits per phone, member number, venue and
address live here."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

MAX_KEYS = 100_000  # the in-process counter forgets expired windows beyond this


class RateLimits(Protocol):
    """Count an event under a key for a window, or read the count without adding one."""

    async def hit(self, key: str, window_s: int) -> int:
        """Add one to the key's count in the current window; the count after it."""

    async def count(self, key: str, window_s: int) -> int:
        """The key's count in the current window."""

    async def close(self) -> None:
        """Release connections."""


def _slot(key: str, window_s: int, now: float) -> str:
    return f"{key}:{int(now // window_s)}"


class MemoryRateLimits:
    """Counts in this process only (the embedded default: one server process)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}  # slot → (expires at, count)

    async def hit(self, key: str, window_s: int) -> int:
        """Add one in the current window."""
        now = time.time()
        if len(self._counts) >= MAX_KEYS:
            self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        slot = _slot(key, window_s, now)
        _, count = self._counts.get(slot, (0.0, 0))
        self._counts[slot] = (now + window_s, count + 1)
        return count + 1

    async def count(self, key: str, window_s: int) -> int:
        """The count in the current window."""
        return self._counts.get(_slot(key, window_s, time.time()), (0.0, 0))[1]

    async def close(self) -> None:
        """Nothing to release."""


class RedisRateLimits:
    """INCR and EXPIRE on one key per window, so every process counts together."""

    def __init__(self, url: str, prefix: str = "hetang:limit:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def hit(self, key: str, window_s: int) -> int:
        """Add one in the current window."""
        slot = self._prefix + _slot(key, window_s, time.time())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(slot)
            pipe.expire(slot, window_s + 1)
            count, _ = await pipe.execute()
        return int(count)

    async def count(self, key: str, window_s: int) -> int:
        """The count in the current window."""
        value = await self._redis.get(self._prefix + _slot(key, window_s, time.time()))
        return int(value) if value is not None else 0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_rate_limits(redis_url: str | None) -> RateLimits:
    """Redis when configured, else in-process."""
    return RedisRateLimits(redis_url) if redis_url else MemoryRateLimits()
