"""A second app on a test's database whose workflow clock runs fast, for tests of what the
clock does by itself."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.keys import LEADERSHIP_KEY
from server.settings import Settings


@asynccontextmanager
async def fast_clock(client: Any, settings: Settings) -> AsyncIterator[None]:
    """An app whose workflow clock runs every 50 ms. The test's own app gives the background
    jobs' lead up first, as a process shutting down would, so that the fast one leads (on
    PostgreSQL one process at a time does)."""
    await client.app[LEADERSHIP_KEY].close()
    fast = dataclasses.replace(settings, workflow_interval_s=0.05)
    async with TestClient(TestServer(create_app(fast))):
        yield
