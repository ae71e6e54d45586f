"""Listening to the server's events WebSocket: a changed schedule is fetched at once instead of
at the next poll; a broadcast starting or ending starts or stops its reception; a member's own
check-in by phone (checkin_recorded) joins the staff page's list at once."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import aiohttp

from venue_agent.client import ServerClient
from venue_agent.link import Backoff

log = logging.getLogger(__name__)
BROADCAST_EVENTS = ("broadcast_started", "broadcast_moved", "broadcast_ended")


class Broadcasts(Protocol):
    """What reacts to broadcasts starting and ending (the receiver)."""

    def broadcast_started(self, session_public_id: str) -> None:
        """A broadcast of this session is on (said again after every reconnection)."""

    def broadcast_moved(self, session_public_id: str) -> None:
        """The media server this venue received the broadcast from is gone: subscribe again."""

    def broadcast_ended(self, session_public_id: str) -> None:
        """The operator ended this session's broadcast."""


class RecordedCheckins(Protocol):
    """What keeps check-ins the server took itself (the desk's journal)."""

    def recorded(self, event: dict[str, object]) -> None:
        """A check-in the server stored already (a member's phone): show it, never send it."""


class EventListener:
    """Keeps one events connection open, reconnecting with backoff when it drops."""

    def __init__(
        self,
        client: ServerClient,
        schedule_stale: asyncio.Event,
        broadcasts: Broadcasts | None = None,
        checkins: RecordedCheckins | None = None,
    ) -> None:
        self.client = client
        self.schedule_stale = schedule_stale
        self.broadcasts = broadcasts
        self.checkins = checkins
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
        kind, session_public_id = event.get("type"), event.get("session_id")
        log.info("event %s for session %s", kind, session_public_id)
        if kind == "schedule_changed":
            self.schedule_stale.set()
        elif kind == "checkin_recorded" and self.checkins is not None:
            self.checkins.recorded(event)
        elif kind in BROADCAST_EVENTS and self.broadcasts is not None:
            if not isinstance(session_public_id, str) or not 0 < len(session_public_id) <= 32:
                log.warning("ignored a %s event without a session id", kind)
            elif kind == "broadcast_started":
                self.broadcasts.broadcast_started(session_public_id)
            elif kind == "broadcast_moved":
                self.broadcasts.broadcast_moved(session_public_id)
            else:
                self.broadcasts.broadcast_ended(session_public_id)
