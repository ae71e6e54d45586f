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
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

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
    """Redis pub/sub: every server process sharing the Redis sees every message. One pub/sub
    connection per process carries every channel its subscribers listen to (a channel is
    subscribed in Redis while it has a subscriber here), and one reader hands each message to
    the subscribers of this process: 2,000 agents' sockets cost two Redis connections, not
    2,000."""

    def __init__(self, url: str, prefix: str = "hetang:", name: str = "hetang-live") -> None:
        # Named, so that CLIENT LIST tells the live events' connections from the others.
        self._redis: Redis = Redis.from_url(url, client_name=name)
        self._prefix = prefix
        self._local = MemoryBroker()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listeners: dict[str, int] = {}  # channel → subscribers in this process
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """PUBLISH the message as JSON."""
        await self._redis.publish(self._prefix + channel, json.dumps(message, ensure_ascii=False))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """The channel's messages for the life of the context."""
        async with self._local.subscribe(channel) as messages:
            await self._join(channel)
            try:
                yield messages
            finally:
                await self._leave(channel)

    async def _join(self, channel: str) -> None:
        async with self._lock:
            self._listeners[channel] = self._listeners.get(channel, 0) + 1
            if self._listeners[channel] > 1:
                return
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub()
            await self._pubsub.subscribe(self._prefix + channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub), name="live-events")

    async def _leave(self, channel: str) -> None:
        async with self._lock:
            self._listeners[channel] -= 1
            if self._listeners[channel] or self._pubsub is None:
                return
            del self._listeners[channel]
            try:
                await self._pubsub.unsubscribe(self._prefix + channel)
            except (RedisError, OSError) as error:  # resubscribed without it on reconnection
                log.warning("could not unsubscribe from %s: %s", channel, error)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError) as error:
                log.warning("live events from Redis interrupted (%s); reconnecting", error)
                await asyncio.sleep(1.0)
                continue
            except RuntimeError:  # every channel left before the connection was made
                await asyncio.sleep(0.1)
                continue
            if item is None or item.get("type") != "message":
                continue
            channel = item["channel"].decode()[len(self._prefix) :]
            try:
                message = json.loads(item["data"])
            except (TypeError, ValueError):
                log.warning("ignored a malformed live message on %s", channel)
                continue
            await self._local.publish(channel, message)

    async def close(self) -> None:
        """Stop the reader; close the pub/sub connection and the pool."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()


def make_broker(redis_url: str | None) -> Broker:
    """Redis when configured, else in-process."""
    return RedisBroker(redis_url) if redis_url else MemoryBroker()


def venue_channel(code: str) -> str:
    """Where a venue's agent listens."""
    return f"venue:{code}"
