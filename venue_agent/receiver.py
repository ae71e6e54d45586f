"""Receiving the live broadcast of this venue's sessions: from broadcast_started until
broadcast_ended, one reception per session (venue_agent.reception), subscribed afresh (with
backoff) when it fails or goes silent, and sampled every stats_s into the outbox for the server
(kind 'sample')."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from passthrough.peer import IceSettings
from venue_agent.client import ServerClient
from venue_agent.health import GOOD
from venue_agent.ice import IcePicker
from venue_agent.link import Link
from venue_agent.outbox import Outbox
from venue_agent.reception import DEGRADED, IDLE, RECEIVING, Reception
from venue_agent.screen import Screen
from venue_agent.upstream import OfferWay

log = logging.getLogger(__name__)


class Receiver:
    """The receptions of this venue, started and ended by the server's events."""

    def __init__(
        self, client: ServerClient, outbox: Outbox, link: Link, ice: IceSettings, screen: Screen
    ) -> None:
        self.client, self.outbox, self.link, self.ice = client, outbox, link, ice
        # One for every reception: the local settings, the server's servers, the TURN transport.
        self.ice_picker = IcePicker(client, ice)
        self.screen = screen
        self._receptions: dict[str, Reception] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._screen_holder: Reception | None = None
        self.way = OfferWay()  # who offers on this server: learned once, for every reception
        self.changed = asyncio.Event()  # the heartbeat state changed
        self._told = IDLE

    def _note_state(self) -> None:
        """Wake the heartbeat when its state changes, so the venue wall shows it at once."""
        state = self.heartbeat_state
        if state != self._told:
            self._told = state
            self.changed.set()

    def broadcast_started(self, session_public_id: str) -> None:
        """Receive this session's broadcast (again, if it was already)."""
        reception = self._receptions.get(session_public_id)
        if reception is not None and not reception.ending:
            reception.restart()
            return
        screen = None
        holder = self._screen_holder
        if holder is None or holder.ending:
            screen = self.screen  # one broadcast at a time on the room screen: the first
        reception = Reception(
            session_public_id,
            self.client,
            self.outbox,
            self.link,
            self.ice_picker,
            screen,
            self.way,
            self._note_state,
        )
        if screen is not None:
            self._screen_holder = reception
        self._receptions[session_public_id] = reception
        task = asyncio.create_task(self._run(reception))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("session %s: the broadcast started; receiving it", session_public_id)

    def broadcast_moved(self, session_public_id: str) -> None:
        """The media server this venue received from is gone: subscribe again at once."""
        reception = self._receptions.get(session_public_id)
        if reception is None or reception.ending:
            self.broadcast_started(session_public_id)
        else:
            reception.move()

    def broadcast_ended(self, session_public_id: str) -> None:
        """Stop receiving this session's broadcast."""
        reception = self._receptions.get(session_public_id)
        if reception is not None:
            log.info("session %s: the broadcast ended", session_public_id)
            reception.end()
            self._note_state()

    async def _run(self, reception: Reception) -> None:
        try:
            await reception.run()
        except Exception:
            log.exception("session %s: reception failed", reception.session_public_id)
        finally:
            if self._receptions.get(reception.session_public_id) is reception:
                del self._receptions[reception.session_public_id]
            if self._screen_holder is reception:
                self._screen_holder = None
                self.screen.show(None)
            self._note_state()

    def _active(self) -> list[Reception]:
        return [r for r in self._receptions.values() if not r.ending]

    @property
    def heartbeat_state(self) -> str:
        """idle (nothing to receive), receiving (good), or degraded (degraded or down)."""
        states = [reception.state for reception in self._active()]
        if not states:
            return IDLE
        return RECEIVING if GOOD in states else DEGRADED

    @property
    def session_public_id(self) -> str | None:
        """The session being received, if any."""
        active = self._active()
        return active[0].session_public_id if active else None

    @property
    def ice_path(self) -> str | None:
        """How the picture of the session being received travels, once connected."""
        active = self._active()
        return active[0].ice_path if active else None

    def status(self) -> dict[str, Any]:
        """For the staff page: the state and figures of the broadcast being received."""
        active = self._active()
        if not active:
            return {"state": IDLE, "session_id": None}
        reception = active[0]
        return {
            **(reception.latest or {}),
            "state": reception.state,
            "session_id": reception.session_public_id,
            "viewers": self.screen.viewers,
            # Live, between samples: how many frames were decoded so far.
            "frames_decoded_now": reception.frames.frames,
        }

    async def close(self) -> None:
        """The agent stops: close every connection (no final sample: the stream did not end)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
