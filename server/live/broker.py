"""Live events between server processes: in-process by default, Redis pub/sub when configured.
A lost live message never loses data: pages and agents re-read the database on reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)
QUEUE_SIZE = 256


class Broker(Protocol):
    """Publish a JSON message on a channel; subscribe to a channel's messages."""

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Send a message to every subscriber of the channel, in every process."""

    def subscribe(
        self, channel: str
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """The channel's messages from now on, while the context lasts."""

    async def close(self) -> None:
        """Release connections."""


class MemoryBroker:
    """Subscribers of this process only; each has a bounded queue (the oldest is dropped)."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Hand the message to every queue of the channel."""
        for queue in list(self._queues.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Messages of the channel, while the context lasts."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.setdefault(channel, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]

    async def close(self) -> None:
        """Nothing to release."""


async def _drain(queue: asyncio.Queue[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await queue.get()


class RedisBroker:
    """Redis pub/sub: every server process sharing the Redis sees every message."""

    def __init__(self, url: str, prefix: str = "hetang:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """PUBLISH the message as JSON."""
        await self._redis.publish(self._prefix + channel, json.dumps(message, ensure_ascii=False))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """SUBSCRIBE for the life of the context."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._prefix + channel)
        try:
            yield self._messages(pubsub)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def _messages(self, pubsub: Any) -> AsyncIterator[dict[str, Any]]:
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            try:
                yield json.loads(item["data"])
            except (TypeError, ValueError):
                log.warning("ignored a malformed live message on %s", item.get("channel"))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_broker(redis_url: str | None) -> Broker:
    """Redis when configured, else in-process."""
    return RedisBroker(redis_url) if redis_url else MemoryBroker()


def venue_channel(code: str) -> str:
    """Where a venue's agent listens."""
    return f"venue:{code}"
