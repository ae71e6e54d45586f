"""Fixtures of the relay tests that build on the wiring directly (no server app)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection

from passthrough.fanout import RelayCounters, Source
from passthrough.wiring import LOW_VIDEO, SOURCE_NAMES
from tests.support.rtc_peers import close_all


@pytest.fixture
async def sources() -> AsyncIterator[dict[str, Source]]:
    """One source per layer and kind, as a broadcast has them; closed afterwards."""
    counters = RelayCounters()
    made = {name: Source("video" if name == LOW_VIDEO else name, counters) for name in SOURCE_NAMES}
    try:
        yield made
    finally:
        for source in made.values():
            source.close()


@pytest.fixture
async def relay_ins() -> AsyncIterator[list[RTCPeerConnection]]:
    """The relay's publisher-side peers (max-bundle, as Broadcasts makes them), closed after."""
    made: list[RTCPeerConnection] = []
    try:
        yield made
    finally:
        await close_all(made)


@pytest.fixture
async def made() -> AsyncIterator[list[RTCPeerConnection]]:
    """The test's own peers, closed at the end."""
    peers: list[RTCPeerConnection] = []
    yield peers
    await close_all(peers)
