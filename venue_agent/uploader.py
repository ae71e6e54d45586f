"""The sync loop: pending check-ins go to the server in batches until each has its answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from venue_agent import clock
from venue_agent.client import RateLimited, Refused, ServerClient, Unavailable
from venue_agent.link import Backoff, Link
from venue_agent.outbox import REJECTED, SENT, Outbox

log = logging.getLogger(__name__)

MAX_BATCH = 500  # PROTOCOL.md: a batch holds at most 500 events
IDLE_POLL_S = 5.0  # also picks up events another process (hetang-agent import) journaled


@dataclass(frozen=True)
class Pause:
    """How long to wait before the next upload step, and whether it is for lack of work."""

    seconds: float
    idle: bool = False


class Uploader:
    """Sends the outbox's pending check-ins; an event is never sent again once answered."""

    def __init__(
        self,
        outbox: Outbox,
        client: ServerClient,
        link: Link,
        *,
        batch_size: int = MAX_BATCH,
        backoff: Backoff | None = None,
    ) -> None:
        self.outbox, self.client, self.link = outbox, client, link
        self.batch_size = min(batch_size, MAX_BATCH)
        self.backoff = backoff or Backoff()

    async def run_forever(self) -> None:
        """Upload whenever there is something to send; wait out failures."""
        while True:
            pause = await self.step()
            if pause is None:
                continue
            if pause.idle:
                # Nothing to send: a new scan wakes us at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.link.new_events.wait(), pause.seconds)
            else:
                await asyncio.sleep(pause.seconds)

    async def step(self) -> Pause | None:
        """Send one batch; answers how long to wait before the next step (None: go on now)."""
        try:
            sent = await self.upload_batch()
        except RateLimited as error:
            log.warning("check-ins: rate limited, waiting %g s as asked", error.retry_after)
            return Pause(error.retry_after)
        except Unavailable as error:
            self.link.lost(str(error))
            return Pause(self.backoff.next())
        except Refused as error:
            self.link.refused(error)
            return Pause(self.backoff.cap_s)
        self.backoff.reset()
        return None if sent else Pause(IDLE_POLL_S, idle=True)

    async def upload_batch(self) -> int:
        """Send the oldest pending check-ins once; answers how many were settled."""
        self.link.new_events.clear()  # before reading, so a scan made meanwhile is not missed
        batch = await asyncio.to_thread(self.outbox.pending, "checkin", self.batch_size)
        if not batch:
            return 0
        try:
            results = await self.client.checkins(clock.now_iso(), [e.payload for e in batch])
        except Refused as error:
            if error.about_us:
                raise
            # The whole batch is refused as it is: never resend it unchanged.
            reason = f"http_{error.status}" + (f" {error.code}" if error.code else "")
            log.error("check-ins: the server refused a batch of %d (%s)", len(batch), error)
            outcomes: list[tuple[str, str, str | None]] = [
                (event.event_id, REJECTED, reason) for event in batch
            ]
        else:
            outcomes = [
                (r.event_id, SENT, None if r.status == "accepted" else r.status)
                if r.status in ("accepted", "duplicate")
                else (r.event_id, REJECTED, r.reason or "rejected")
                for r in results
            ]
        await asyncio.to_thread(self.outbox.finish, outcomes, clock.now_iso())
        rejected = sum(1 for _, state, _ in outcomes if state == REJECTED)
        log.info("check-ins: %d sent, %d rejected", len(outcomes) - rejected, rejected)
        await self.link.reached(self.outbox)
        return len(outcomes)

    async def drain(self, tries: int = 3, longest_wait_s: float = 60.0) -> bool:
        """Upload until nothing is pending (for one-shot commands); False if it had to give up."""
        failures = 0
        while True:
            pause = await self.step()
            if pause is None:
                continue
            if pause.idle:
                return True
            failures += 1
            if failures >= tries or pause.seconds > longest_wait_s:
                return False
            await asyncio.sleep(pause.seconds)
