"""Hello, heartbeat and schedule refresh: the agent's side of the conversation besides check-ins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from venue_agent import clock
from venue_agent.client import RateLimited, Refused, ServerClient, Unavailable
from venue_agent.link import Backoff, Link
from venue_agent.outbox import Outbox
from venue_agent.schedule import ScheduleBook, ScheduleError

log = logging.getLogger(__name__)

SCHEDULE_EVERY_S = 30.0  # an unchanged schedule costs a 304


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
    ) -> None:
        self.client, self.outbox, self.book, self.link = client, outbox, book, link
        self.hostname = hostname
        self.schedule_every_s = schedule_every_s
        self.backoff = Backoff()
        self.schedule_stale = asyncio.Event()  # set by the events listener

    async def run_forever(self) -> None:
        """Talk to the server when due; when it cannot be reached, try again with backoff."""
        next_schedule = next_beat = 0.0
        while True:
            try:
                if self.link.needs_hello:
                    self.link.greeted(await self.client.hello(self.hostname))
                    next_schedule = next_beat = 0.0  # fresh data after every (re)connection
                if time.monotonic() >= next_schedule or self.schedule_stale.is_set():
                    self.schedule_stale.clear()
                    await self.refresh_schedule()
                    next_schedule = time.monotonic() + self.schedule_every_s
                if time.monotonic() >= next_beat:
                    await self.heartbeat()
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
            await self.link.reached(self.outbox)
            await self._pause(max(0.0, min(next_schedule, next_beat) - time.monotonic()))

    async def _pause(self, seconds: float) -> None:
        """Sleep until the next beat or poll, or until the schedule is known to have changed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.schedule_stale.wait(), timeout=seconds)

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
        current = self.book.current(clock.now())
        # No stream receiver yet (a later issue): the agent is idle as far as media goes.
        await self.client.heartbeat("idle", current.id if current else None, counts.pending)
