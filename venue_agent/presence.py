"""Hello, heartbeat and schedule refresh: the agent's side of the conversation besides check-ins."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from venue_agent import clock
from venue_agent.client import RateLimited, Refused, ServerClient, Unavailable
from venue_agent.link import Backoff, Link
from venue_agent.outbox import Outbox
from venue_agent.schedule import ScheduleBook, ScheduleError

log = logging.getLogger(__name__)

SCHEDULE_EVERY_S = 30.0  # an unchanged schedule costs a 304


class Media(Protocol):
    """What the heartbeat says about the live stream (the receiver)."""

    @property
    def heartbeat_state(self) -> str:
        """idle, receiving or degraded."""

    @property
    def session_public_id(self) -> str | None:
        """The session whose broadcast is being received."""

    @property
    def ice_path(self) -> str | None:
        """How its picture travels (passthrough.peer.ICE_PATHS), once connected."""

    @property
    def changed(self) -> asyncio.Event:
        """Set when the heartbeat state changed (the server should hear of it now)."""


class Presence:
    """Says hello (again after every outage), beats, and keeps the schedule fresh."""

    def __init__(
        self,
        client: ServerClient,
        outbox: Outbox,
        book: ScheduleBook,
        link: Link,
        hostname: str,
        *,
        schedule_every_s: float = SCHEDULE_EVERY_S,
        media: Media | None = None,
    ) -> None:
        self.client, self.outbox, self.book, self.link = client, outbox, book, link
        self.hostname = hostname
        self.schedule_every_s = schedule_every_s
        self.media = media
        self.ice_path: str | None = None  # the last one reported, to log when it changes
        self.backoff = Backoff()
        self.schedule_stale = asyncio.Event()  # set by the events listener

    async def run_forever(self) -> None:
        """Talk to the server when due; when it cannot be reached, try again with backoff."""
        next_schedule = next_beat = 0.0
        while True:
            try:
                # Every answer counts as soon as it comes: the uploader waits for one.
                if self.link.needs_hello:
                    self.link.greeted(await self.client.hello(self.hostname))
                    await self.link.reached(self.outbox)
                    next_schedule = next_beat = 0.0  # fresh data after every (re)connection
                if time.monotonic() >= next_schedule or self.schedule_stale.is_set():
                    self.schedule_stale.clear()
                    await self.refresh_schedule()
                    await self.link.reached(self.outbox)
                    next_schedule = time.monotonic() + self.schedule_every_s
                media_changed = self._media_changed()
                if media_changed or time.monotonic() >= next_beat:
                    await self.heartbeat()
                    await self.link.reached(self.outbox)
                    next_beat = time.monotonic() + self.link.heartbeat_s
            except RateLimited as error:
                log.warning("rate limited; waiting %g s as asked", error.retry_after)
                await asyncio.sleep(error.retry_after)
                continue
            except Unavailable as error:
                self.link.lost(str(error))
                await asyncio.sleep(self.backoff.next())
                continue
            except Refused as error:
                self.link.refused(error)
                await asyncio.sleep(self.backoff.cap_s)
                continue
            self.backoff.reset()
            await self._pause(max(0.0, min(next_schedule, next_beat) - time.monotonic()))

    def _media_changed(self) -> bool:
        if self.media is None or not self.media.changed.is_set():
            return False
        self.media.changed.clear()
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep until the next beat or poll, or until the schedule is known to have changed or
        the live stream's state did."""
        events = [self.schedule_stale] + ([self.media.changed] if self.media else [])
        waits = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def refresh_schedule(self) -> None:
        """GET schedule; keep the new copy, or the old one when it is unchanged or malformed."""
        answer = await self.client.schedule(self.book.etag)
        if answer.data is None:
            return
        try:
            await asyncio.to_thread(
                self.book.replace, self.outbox, answer.data, answer.etag, clock.now_iso()
            )
        except ScheduleError as error:
            log.error("the server sent a schedule we cannot read (%s); keeping the last one", error)
            return
        log.info("schedule: %d sessions", len(self.book.sessions))

    async def heartbeat(self) -> None:
        """POST heartbeat with what we are doing and how much waits to be sent."""
        counts = await asyncio.to_thread(self.outbox.counts)
        state, session_public_id, path = "idle", None, None
        if self.media is not None:
            state, session_public_id = self.media.heartbeat_state, self.media.session_public_id
            path = self.media.ice_path
        if path != self.ice_path:
            if path is not None:
                log.info("the broadcast reaches us over ICE path %s", path)
            self.ice_path = path
        if session_public_id is None:
            current = self.book.current(clock.now())
            session_public_id = current.public_id if current else None
        await self.client.heartbeat(state, session_public_id, counts.pending, path)
