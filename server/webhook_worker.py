"""The webhook delivery worker, run for the life of the app (contexts.webhooks_ctx): it takes due
rows from the outbox, signs each with `standardwebhooks` (Standard Webhooks v1) and posts it,
and writes the outcomes back. Each endpoint has a few sends in flight at most, so a slow or
failing receiver never holds up the others; a session's events reach an endpoint in order."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections import defaultdict
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from standardwebhooks import Webhook

from server.db.session import read_session, write_session
from server.domain.webhook_secrets import SecretBox, SecretUnreadable
from server.domain.webhooks import is_public_address, outcome, parse_retry_after, url_host
from server.keys import DB_KEY, SETTINGS_KEY
from server.services import webhook_delivery, webhook_outbox
from server.services.clock import utcnow
from server.services.webhook_delivery import Attempt, Due

log = logging.getLogger(__name__)
PER_ENDPOINT = 8  # sends in flight to one endpoint at a time
GATHER_S = 0.01  # after a wake-up, outcomes that arrive this soon join the same round
LEASE_MARGIN_S = 5.0  # a claimed row is due again this long after its send's timeout
USER_AGENT = "Hetang-Webhooks/1"


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, but refuses a host with any non-public address (DNS rebinding)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not all(is_public_address(item["host"]) for item in found):
            raise OSError(f"{host} resolves to a loopback, private or link-local address")
        return found

    async def close(self) -> None:
        await self._inner.close()


async def _first_of(a: asyncio.Event, b: asyncio.Event, seconds: float) -> None:
    """Until either event is set, or the timeout (an app stopping is not kept waiting for
    the next poll)."""
    waiters = {asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


class Worker:
    """One app's deliveries: claims due rows, sends them, batches the outcomes."""

    def __init__(self, app: web.Application, http: aiohttp.ClientSession) -> None:
        self.app, self.http = app, http
        settings = app[SETTINGS_KEY]
        self.policy = settings.webhooks
        self.box = SecretBox(settings.secret_key)
        self.wake = asyncio.Event()
        self.in_flight: defaultdict[int, int] = defaultdict(int)
        # An endpoint that stopped answering is held back as a whole (not each of its
        # deliveries on its own schedule): its failures in a row, and until when it waits.
        self.streak: defaultdict[int, int] = defaultdict(int)
        self.held_until: dict[int, float] = {}
        self.outcomes: list[Attempt] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until stopped: write outcomes and claim what is due (one transaction), send
        it; sleep until an event, an outcome or the poll interval."""
        while not stop.is_set():
            try:
                await self.round(claim=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the webhook worker failed; trying again next round")
            await _first_of(self.wake, stop, self.policy.poll_s)
            self.wake.clear()
            if not stop.is_set():
                await asyncio.sleep(GATHER_S)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.policy.timeout_s + 1)
        await self.round(claim=False)

    async def round(self, *, claim: bool) -> None:
        """Write the outcomes gathered so far and, when asked, claim the deliveries due now."""
        if not self.outcomes:
            if not claim:
                return
            async with read_session(self.app[DB_KEY]) as session:
                if not await webhook_delivery.anything_due(session, utcnow()):
                    return  # nothing to write or send: no write lock taken
        outcomes, self.outcomes = self.outcomes, []
        lease = self.policy.timeout_s + LEASE_MARGIN_S
        try:
            async with write_session(self.app[DB_KEY]) as session:
                disabled = await webhook_delivery.record(session, outcomes, self.policy)
                due = (
                    await webhook_delivery.claim_due(
                        session, utcnow(), self.free, lease, PER_ENDPOINT, self.busy()
                    )
                    if claim
                    else []
                )
        except BaseException:
            self.outcomes[:0] = outcomes  # written next round (or, lost, retried: at least once)
            raise
        for endpoint in disabled:  # enabled again, it starts afresh
            self.streak.pop(endpoint, None)
            self.held_until.pop(endpoint, None)
        for item in due:
            self.in_flight[item.endpoint_id] += 1
            task = asyncio.create_task(self.send(item))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def busy(self) -> list[int]:
        """The endpoints that may have no more sends in flight now."""
        return [e for e in set(self.in_flight) | set(self.held_until) if self.free(e) <= 0]

    def free(self, endpoint_id: int) -> int:
        """How many more sends the endpoint may have in flight now."""
        held = self.held_until.get(endpoint_id, 0.0) > asyncio.get_running_loop().time()
        return 0 if held else PER_ENDPOINT - self.in_flight[endpoint_id]

    async def send(self, due: Due) -> None:
        """One attempt; its outcome is kept for the next round's write."""
        try:
            attempt = await self.attempt(due)
        finally:
            self.in_flight[due.endpoint_id] -= 1
        self.outcomes.append(attempt)
        self.hold(attempt)
        self.wake.set()

    def hold(self, attempt: Attempt) -> None:
        """After a failure to be retried, the endpoint waits as its next try would; the other
        failures of a burst sent before the hold are the same outage, counted once."""
        endpoint, now = attempt.endpoint_id, asyncio.get_running_loop().time()
        streak = self.streak[endpoint] + 1
        judged = outcome(
            attempt.status, streak, attempt.retry_after_s, self.policy.retry_base_s, attempt.jitter
        )
        if judged.state != "pending":
            self.streak.pop(endpoint, None)
            self.held_until.pop(endpoint, None)
        elif self.held_until.get(endpoint, 0.0) <= now:
            self.streak[endpoint] = streak
            self.held_until[endpoint] = now + judged.wait_s

    async def attempt(self, due: Due) -> Attempt:
        """Sign and post one delivery; what came of it (no answer: status None)."""
        now = utcnow()
        jitter = random.uniform(0.5, 1.0)  # spreading retries, not a secret

        def failed(error: str) -> Attempt:
            return Attempt(due.id, due.endpoint_id, utcnow(), None, error, None, jitter)

        host = url_host(due.url) or ""
        if not self.policy.allow_private and _is_literal(host) and not is_public_address(host):
            return failed("refused: a loopback, private or link-local address")
        try:
            signature = " ".join(
                Webhook(self.box.open(sealed)).sign(due.msg_id, now, due.payload.encode())
                for sealed in due.secrets
            )
        except SecretUnreadable:
            return failed("the endpoint's secret cannot be opened with this server's key")
        headers = {
            "webhook-id": due.msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self.http.post(
                due.url, data=due.payload.encode(), headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(4096)  # the answer's body is not kept
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return failed(f"{type(error).__name__}: {error}"[:300])
        wait = parse_retry_after(retry_after, utcnow())
        return Attempt(due.id, due.endpoint_id, utcnow(), status, None, wait, jitter)


def _is_literal(host: str) -> bool:
    """An IP address written in the URL (aiohttp never asks the resolver about those)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def run_webhook_worker(app: web.Application, stop: asyncio.Event) -> None:
    """Deliver webhook events until stopped (the app's cleanup context starts and stops it)."""
    policy = app[SETTINGS_KEY].webhooks
    resolver: Any = None if policy.allow_private else PublicOnlyResolver()
    # No cap per host: PER_ENDPOINT caps each endpoint, and a slow endpoint must not hold up
    # another on the same host.
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=0, resolver=resolver)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        worker = Worker(app, http)
        webhook_outbox.wake_on_commit(app[DB_KEY], worker.wake.set)
        await worker.run(stop)
