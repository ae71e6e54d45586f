"""Listening to the server's events WebSocket: a changed schedule is fetched at once instead of
at the next poll; broadcast events are kept for the receiver (the live stream comes later)."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp

from venue_agent.client import ServerClient
from venue_agent.link import Backoff

log = logging.getLogger(__name__)


class EventListener:
    """Keeps one events connection open, reconnecting with backoff when it drops."""

    def __init__(self, client: ServerClient, schedule_stale: asyncio.Event) -> None:
        self.client = client
        self.schedule_stale = schedule_stale
        self.backoff = Backoff()
        self.last_event: dict[str, object] | None = None

    async def run_forever(self) -> None:
        """Connect, listen until the connection ends, wait, connect again."""
        while True:
            try:
                async with self.client.events() as socket:
                    self.backoff.reset()
                    # Whatever changed while we were away: fetch the schedule now.
                    self.schedule_stale.set()
                    async for message in socket:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            self.handle(message.data)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                log.debug("events connection: %s", error)
            await asyncio.sleep(self.backoff.next())

    def handle(self, text: str) -> None:
        """React to one event."""
        try:
            event = json.loads(text)
        except ValueError:
            log.warning("ignored a malformed event")
            return
        if not isinstance(event, dict):
            return
        self.last_event = event
        if event.get("type") == "schedule_changed":
            self.schedule_stale.set()
        log.info("event %s for session %s", event.get("type"), event.get("session_id"))
