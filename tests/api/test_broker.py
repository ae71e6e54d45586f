"""The live-event broker on Redis (issue 17): many subscribers of one process share one pub/sub
connection, each gets the messages of its own channel published by another process, and a
channel is given up in Redis when its last subscriber here leaves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from server.live.broker import RedisBroker
from tests.support.databases import REDIS_ENV

pytestmark = pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set")
CHANNELS = 40
PER_CHANNEL = 10


async def _subscribed_clients(redis: Redis, prefix: str) -> int:
    """Connections subscribed to at least one of the test's channels."""
    channels = await redis.pubsub_channels(prefix + "*")
    return len(channels)


async def test_many_subscribers_share_one_connection_and_get_their_own_messages() -> None:
    url = os.environ[REDIS_ENV]
    prefix = f"hetang-test-{uuid.uuid4().hex[:8]}:"
    name = "hetang-test-" + uuid.uuid4().hex[:8]
    here, elsewhere = RedisBroker(url, prefix, name), RedisBroker(url, prefix)
    watcher = Redis.from_url(url)
    received: dict[tuple[str, int], list[dict[str, Any]]] = {}
    try:
        async with contextlib.AsyncExitStack() as stack:
            streams = []
            for c in range(CHANNELS):
                for n in range(PER_CHANNEL):
                    streams.append(
                        (
                            (f"venue:{c}", n),
                            await stack.enter_async_context(here.subscribe(f"venue:{c}")),
                        )
                    )
            assert await _subscribed_clients(watcher, prefix) == CHANNELS
            # 400 subscribers: one pub/sub connection, not 400.
            ours = [c for c in await watcher.client_list() if c["name"] == name]
            assert len(ours) == 1 and int(ours[0]["sub"]) == CHANNELS
            for c in range(CHANNELS):
                await elsewhere.publish(f"venue:{c}", {"type": "schedule_changed", "n": c})

            async def first(key: tuple[str, int], stream: Any) -> None:
                received[key] = [await asyncio.wait_for(anext(stream), timeout=10)]

            await asyncio.gather(*(first(key, stream) for key, stream in streams))
        assert all(
            messages == [{"type": "schedule_changed", "n": int(channel.split(":")[1])}]
            for (channel, _), messages in received.items()
        )
        assert len(received) == CHANNELS * PER_CHANNEL
        # Every subscriber left: Redis no longer sends these channels to this process.
        for _ in range(50):
            if await _subscribed_clients(watcher, prefix) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _subscribed_clients(watcher, prefix) == 0
    finally:
        await here.close()
        await elsewhere.close()
        await watcher.aclose()


async def test_a_subscriber_that_leaves_does_not_silence_the_others() -> None:
    url = os.environ[REDIS_ENV]
    prefix = f"hetang-test-{uuid.uuid4().hex[:8]}:"
    broker, sender = RedisBroker(url, prefix), RedisBroker(url, prefix)
    try:
        async with broker.subscribe("wall:s1") as staying:
            async with broker.subscribe("wall:s1"):
                pass  # one of two leaves
            await asyncio.sleep(0.1)
            await sender.publish("wall:s1", {"type": "changed"})
            assert await asyncio.wait_for(anext(staying), timeout=10) == {"type": "changed"}
    finally:
        await broker.close()
        await sender.close()
