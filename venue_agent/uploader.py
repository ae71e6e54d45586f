"""The sync loop: pending check-ins and stream samples go to the server in batches until each has
its answer. Each kind is a Lane (how a batch is delivered); failures and backoff are shared."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from venue_agent import clock
from venue_agent.client import RateLimited, Refused, ServerClient, Unavailable
from venue_agent.link import Backoff, Link
from venue_agent.outbox import REJECTED, SENT, Event, Outbox

log = logging.getLogger(__name__)

MAX_CHECKINS = 500  # PROTOCOL.md: a batch holds at most 500 events
MAX_SAMPLES = 2000  # and a stream-stats request at most 2000 samples
IDLE_POLL_S = 5.0  # also picks up events another process (hetang-agent import) journaled

# What became of one journaled event: (event_id, 'sent' | 'rejected', reason), for Outbox.finish.
Settlement = tuple[str, str, str | None]


@dataclass(frozen=True)
class Pause:
    """How long to wait before the next upload step, and whether it is for lack of work."""

    seconds: float
    idle: bool = False
    # A failure's wait ends early once the server answers anything (not a wait it asked for).
    until_answered: bool = False


@dataclass(frozen=True)
class Lane:
    """One kind of journaled event: how many go in a batch and how a batch is delivered."""

    kind: str
    label: str
    batch_size: int
    deliver: Callable[[ServerClient, Sequence[Event]], Awaitable[list[Settlement]]]
    log_level: int = logging.INFO


def refused_settlements(
    error: Refused, events: Sequence[Event], what: str, about_us: Callable[[Refused], bool]
) -> list[Settlement]:
    """A request refused as it is is never resent unchanged: its events become rejected. A
    refusal of the agent itself (token, address) is raised instead, for the caller to wait out."""
    if about_us(error):
        raise error
    reason = f"http_{error.status}" + (f" {error.code}" if error.code else "")
    log.error("%s: the server refused a batch of %d (%s)", what, len(events), error)
    return [(event.event_id, REJECTED, reason) for event in events]


async def deliver_checkins(client: ServerClient, events: Sequence[Event]) -> list[Settlement]:
    """POST checkins; each event gets the server's own verdict."""
    try:
        results = await client.checkins(clock.now_iso(), [e.payload for e in events])
    except Refused as error:
        return refused_settlements(error, events, "check-ins", lambda e: e.about_us)
    return [
        (r.event_id, SENT, None if r.status == "accepted" else r.status)
        if r.status in ("accepted", "duplicate")
        else (r.event_id, REJECTED, r.reason or "rejected")
        for r in results
    ]


def _sample_refusal_about_us(error: Refused) -> bool:
    # The path is the one every call uses, so a 404 here is about the session (not ours, or
    # gone), not a wrong address: those samples are refused, the others still go.
    return error.about_us and error.status != 404


async def deliver_samples(client: ServerClient, events: Sequence[Event]) -> list[Settlement]:
    """POST stream-stats once per session; the server keeps one sample per second, so every
    answered sample is sent (a repeat is simply not stored twice)."""
    by_session: dict[str, list[Event]] = {}
    for event in events:
        by_session.setdefault(event.session_public_id or "", []).append(event)
    settlements: list[Settlement] = []
    for session_public_id, group in by_session.items():
        if not session_public_id:
            settlements += [(event.event_id, REJECTED, "no_session") for event in group]
            continue
        try:
            await client.stream_stats(
                clock.now_iso(), session_public_id, [e.payload for e in group]
            )
        except Refused as error:
            settlements += refused_settlements(
                error, group, "stream samples", _sample_refusal_about_us
            )
            continue
        settlements += [(event.event_id, SENT, None) for event in group]
    return settlements


CHECKINS = Lane("checkin", "check-ins", MAX_CHECKINS, deliver_checkins)
# Samples come every few seconds: their routine delivery is not worth a log line each.
SAMPLES = Lane("sample", "stream samples", MAX_SAMPLES, deliver_samples, logging.DEBUG)


class Uploader:
    """Sends the outbox's pending events, lane by lane; an event is never sent again once
    answered."""

    def __init__(
        self,
        outbox: Outbox,
        client: ServerClient,
        link: Link,
        *,
        lanes: Sequence[Lane] = (CHECKINS, SAMPLES),
        backoff: Backoff | None = None,
    ) -> None:
        self.outbox, self.client, self.link = outbox, client, link
        self.lanes = tuple(lanes)
        self.backoff = backoff or Backoff()

    async def run_forever(self) -> None:
        """Upload whenever there is something to send; wait out failures."""
        while True:
            answers = self.link.answers
            pause = await self.step()
            if pause is None:
                continue
            if pause.idle:
                # Nothing to send: a new scan or sample wakes us at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.link.new_events.wait(), pause.seconds)
            elif pause.until_answered:
                await self.wait_for_server(pause.seconds, answers)
            else:
                await asyncio.sleep(pause.seconds)

    async def wait_for_server(self, seconds: float, answers: int) -> None:
        """Wait out a failure, but only until the server answers one of our other loops (a
        hello, a heartbeat, a schedule): then the backoff starts over and we try at once.
        `answers` is the link's count from before the failed try, so an answer that came while
        it was failing is not missed."""
        if self.link.answers == answers:
            self.link.answered.clear()
            try:
                await asyncio.wait_for(self.link.answered.wait(), seconds)
            except TimeoutError:
                return
        log.debug("upload: the server answered; trying again now")
        self.backoff.reset()

    async def step(self) -> Pause | None:
        """Send one batch of each lane; answers how long to wait before the next step (None: go
        on now)."""
        try:
            sent = await self.upload_batch()
        except RateLimited as error:
            log.warning("upload: rate limited, waiting %g s as asked", error.retry_after)
            return Pause(error.retry_after)
        except Unavailable as error:
            self.link.lost(str(error))
            return Pause(self.backoff.next(), until_answered=True)
        except Refused as error:
            self.link.refused(error)
            return Pause(self.backoff.cap_s)  # about us: other calls going through change nothing
        self.backoff.reset()
        return None if sent else Pause(IDLE_POLL_S, idle=True)

    async def upload_batch(self) -> int:
        """Send the oldest pending events of every lane once; answers how many were settled."""
        self.link.new_events.clear()  # before reading, so an event made meanwhile is not missed
        settled = 0
        for lane in self.lanes:
            batch = await asyncio.to_thread(self.outbox.pending, lane.kind, lane.batch_size)
            if not batch:
                continue
            settlements = await lane.deliver(self.client, batch)
            await asyncio.to_thread(self.outbox.finish, settlements, clock.now_iso())
            rejected = sum(1 for _, state, _ in settlements if state == REJECTED)
            log.log(
                max(lane.log_level, logging.INFO) if rejected else lane.log_level,
                "%s: %d sent, %d rejected",
                lane.label,
                len(settlements) - rejected,
                rejected,
            )
            await self.link.reached(self.outbox)
            settled += len(settlements)
        return settled

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
