"""The room screen's media: local Sources fed by the upstream connection's encoded frames, and a
few local viewers (the room's browser) answered from them without decoding or re-encoding. The
Sources outlive upstream connections, so a viewer keeps playing across a resubscription."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from passthrough.fanout import Outlet, RelayCounters, Source
from passthrough.peer import IceSettings, new_peer
from passthrough.wiring import KINDS, answer_subscriber

log = logging.getLogger(__name__)

MAX_VIEWERS = 4  # a room has one screen; a few more tabs are fine, an endless number is not
DEAD_STATES = frozenset({"failed", "closed"})


class NotLive(Exception):
    """Nothing is being received to show."""


class Viewer:
    """One local browser's peer connection and what the sources send it."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.outlets: list[Outlet] = []

    async def close(self) -> None:
        """Detach from the sources and close the peer."""
        for outlet in self.outlets:
            outlet.stop()  # a closed viewer must not keep asking for keyframes
        await self.pc.close()


class Screen:
    """The sources the receiver taps and the viewers that read them."""

    def __init__(self, ice: IceSettings) -> None:
        # The viewer is on this machine: no STUN or TURN server can help it.
        self.ice = IceSettings(hosts=ice.hosts)
        self.counters = RelayCounters()
        self.sources = {kind: Source(kind, self.counters) for kind in KINDS}
        self.session_public_id: str | None = None  # the broadcast the sources carry
        self._viewers: list[Viewer] = []
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> bool:
        """True while a broadcast feeds the sources (or will again after a resubscription)."""
        return self.session_public_id is not None and self.sources["video"].codec is not None

    @property
    def viewers(self) -> int:
        """How many local viewers are connected."""
        return len(self._viewers)

    async def answer(self, offer_sdp: str) -> str:
        """Answer a viewer's receive-only offer; NotLive when there is nothing to show."""
        if not self.live:
            raise NotLive
        while len(self._viewers) >= MAX_VIEWERS:
            await self._drop(self._viewers[0])
        pc = new_peer(self.ice)
        viewer = Viewer(pc)
        self._viewers.append(viewer)

        @pc.on("connectionstatechange")
        def _state_changed() -> None:
            if pc.connectionState in DEAD_STATES and viewer in self._viewers:
                self._later(self._drop(viewer))

        try:
            answer, viewer.outlets = await answer_subscriber(
                pc, RTCSessionDescription(sdp=offer_sdp, type="offer"), self.sources, self.ice
            )
        except BaseException:
            await self._drop(viewer)
            raise
        return answer.sdp

    def _later(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _drop(self, viewer: Viewer) -> None:
        if viewer in self._viewers:
            self._viewers.remove(viewer)
            await viewer.close()

    def show(self, session_public_id: str | None) -> None:
        """The sources now carry this broadcast (None: none; the viewers are let go)."""
        self.session_public_id = session_public_id
        if session_public_id is None:
            for viewer in list(self._viewers):
                self._later(self._drop(viewer))

    async def close(self) -> None:
        """Close every viewer and end the sources (the agent stops)."""
        self.session_public_id = None
        for viewer in list(self._viewers):
            await self._drop(viewer)
        await asyncio.gather(*self._closing, return_exceptions=True)
        for source in self.sources.values():
            source.close()
