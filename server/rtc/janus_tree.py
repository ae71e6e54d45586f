"""The Janus instances of the media tree (issue 17): the origin, which takes the operator's
page, and the edges venues receive from. Each instance has one control session, kept up by its
long poll; a watch pings every edge each second, and an edge that stops answering is marked dead
at once (its venues are then moved by the relay) and taken back when it answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from server.rtc.janus import JanusError, JanusHandle, JanusSession

log = logging.getLogger(__name__)

PING_EVERY_S = 1.0
PING_TIMEOUT_S = 1.0


@dataclass
class Instance:
    """One Janus: its API URL, and while it answers, our session and control handle there."""

    url: str
    name: str
    region: str = ""  # the organization whose subtree's venues it serves first ("": any)
    session: JanusSession | None = None
    control: JanusHandle | None = None
    address: str = ""  # the IPv4 address of its URL's host, resolved when connected

    @property
    def alive(self) -> bool:
        return self.control is not None

    @property
    def host(self) -> str:
        """The host of its API URL, where others send it RTP (a name, in docker compose)."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    def handle(self) -> JanusHandle:
        if self.control is None:
            raise JanusError(458, f"{self.name} is not answering")
        return self.control


class Tree:
    """The origin and its edges; `edges` empty means venues receive from the origin."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        urls: tuple[str, ...],
        edge_lost: Callable[[Instance], Awaitable[None]],
        regions: tuple[str, ...] = (),
    ) -> None:
        self.http = http
        self.origin = Instance(urls[0], "origin")
        self.edges = [
            Instance(url, f"edge-{n}", regions[n] if n < len(regions) else "")
            for n, url in enumerate(urls[1:], start=1)
        ]
        self.edge_lost = edge_lost
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect to every instance that answers; watch the edges from now on."""
        for instance in (self.origin, *self.edges):
            await self._connect(instance)
        self._watch = asyncio.create_task(self._watch_edges(), name="janus-edges")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for instance in (self.origin, *self.edges):
            await self._disconnect(instance, destroy=True)

    async def ensure_origin(self) -> JanusHandle:
        """The origin's control handle (reconnected if the origin was restarted)."""
        session = self.origin.session
        if session is None or session.gone or not await self._answers(self.origin):
            await self._disconnect(self.origin, destroy=False)
            await self._connect(self.origin)
        return self.origin.handle()

    def pick_edge(
        self,
        sticky: Instance | None,
        load: Callable[[Instance], int],
        regions: tuple[str, ...] = (),
    ) -> Instance:
        """Where a venue receives: its current edge while it lives; else, of the living edges
        serving one of `regions` (the venue's organization and those above it) or failing that
        of all living edges, the one with the fewest venues (`load`); else the origin (no
        edges, or none alive)."""
        if sticky is not None and sticky.alive:
            return sticky
        living = [edge for edge in self.edges if edge.alive]
        local = [edge for edge in living if edge.region and edge.region in regions]
        if not living:
            return self.origin
        return min(local or living, key=load)

    async def _connect(self, instance: Instance) -> None:
        try:
            # Janus binds a remote publisher's port on an IP address, never a host name.
            found = await asyncio.get_running_loop().getaddrinfo(
                instance.host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
            instance.address = str(found[0][4][0])
            session = await JanusSession.create(self.http, instance.url)
            instance.control = await session.attach(opaque_id=f"hetang-control-{instance.name}")
            instance.session = session
            log.info("Janus %s (%s) is connected", instance.name, instance.url)
        except (aiohttp.ClientError, TimeoutError, OSError, JanusError, ValueError) as error:
            log.warning("Janus %s (%s) does not answer: %s", instance.name, instance.url, error)
            instance.session = instance.control = None

    async def _disconnect(self, instance: Instance, *, destroy: bool) -> None:
        session, instance.session, instance.control = instance.session, None, None
        if session is None:
            return
        if destroy:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, JanusError):
                await session.destroy()
        await session.close()

    async def _answers(self, instance: Instance) -> bool:
        try:
            async with self.http.get(
                instance.url + "/info", timeout=aiohttp.ClientTimeout(total=PING_TIMEOUT_S)
            ) as reply:
                return reply.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _watch_edges(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY_S)
            for edge in self.edges:
                answers = await self._answers(edge)
                if edge.alive and not answers:
                    log.error("Janus %s (%s) stopped answering", edge.name, edge.url)
                    await self._disconnect(edge, destroy=False)
                    try:
                        await self.edge_lost(edge)
                    except Exception:
                        log.exception("moving the venues off %s failed", edge.name)
                elif not edge.alive and answers:
                    await self._connect(edge)
