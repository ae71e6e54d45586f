"""One session's reception: subscribe, watch the connection, subscribe again (with backoff)
when it fails, goes silent, or the server says the broadcast started again or moved; sample its
health every second into the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from passthrough.stall import guard_video
from venue_agent import clock
from venue_agent.client import RateLimited, Refused, ServerClient, Unavailable
from venue_agent.health import (
    DOWN_AFTER_S,
    GOOD,
    NOTHING_RECEIVED,
    FrameClock,
    Health,
    SoundClock,
    Totals,
)
from venue_agent.health import measure as measure_health
from venue_agent.ice import IcePicker, ice_path
from venue_agent.link import Backoff, Link
from venue_agent.outbox import NewEvent, Outbox
from venue_agent.screen import Screen
from venue_agent.upstream import OfferWay, Upstream

log = logging.getLogger(__name__)

STALL_S = 8.0  # no video frame for this long on a connection: subscribe afresh
RESTART_WINDOW_S = 5.0  # after broadcast_started, how long a going-quiet connection is replaced
HEALTHY_S = 30.0  # a connection that delivered frames this long earns a fresh backoff
WATCH_S = 0.5  # how often a connection's state is looked at
RETRY_CAP_S = 30.0
IDLE, RECEIVING, DEGRADED = "idle", "receiving", "degraded"  # heartbeat states


class Reception:
    """One session's broadcast, as long as it is believed on."""

    def __init__(
        self,
        session_public_id: str,
        client: ServerClient,
        outbox: Outbox,
        link: Link,
        ice: IcePicker,
        screen: Screen | None,
        way: OfferWay,
        on_sample: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_public_id = session_public_id
        self.way = way
        self.on_sample = on_sample
        self.client, self.outbox, self.link, self.ice = client, outbox, link, ice
        self.screen = screen  # set when this reception feeds the room screen
        self.frames = FrameClock()
        self.sound = SoundClock(time.monotonic())
        self.upstream: Upstream | None = None
        self.latest: dict[str, Any] | None = None  # the last sample journaled
        self.ending = False
        self._restart = False
        self._restart_at = 0.0
        self._move = False
        self._changed = asyncio.Event()
        self._backoff = Backoff(first_s=1.0, cap_s=RETRY_CAP_S)
        self._last_second = 0
        self._guard: asyncio.Task[None] | None = None  # the stall guard of the upstream's video

    def end(self) -> None:
        """broadcast_ended: write the final sample and stop."""
        self.ending = True
        self._changed.set()

    def restart(self) -> None:
        """broadcast_started again (a republish, or our reconnection): subscribe now unless
        frames are flowing."""
        self._restart = True
        self._restart_at = time.monotonic()
        self._changed.set()

    def move(self) -> None:
        """broadcast_moved: the media server we received from is gone; subscribe again now."""
        self._move = True
        self._changed.set()

    @property
    def state(self) -> str:
        """good, degraded or down: the last sample's, or before the first one, the frames'."""
        if self.latest is not None:
            return str(self.latest["state"])
        upstream = self.upstream
        if upstream is not None and upstream.silence(time.monotonic()) < DOWN_AFTER_S:
            return GOOD
        return NOTHING_RECEIVED.state

    @property
    def ice_path(self) -> str | None:
        """How the current connection's media travels (passthrough.peer.ICE_PATHS), if known."""
        upstream = self.upstream
        return None if upstream is None else ice_path(upstream.pc, self.ice.current)

    async def run(self) -> None:
        """Receive and sample until the broadcast ends; then journal a final `down` sample."""
        sampler = asyncio.create_task(self._sample_forever())
        try:
            final = await self._receive()
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            await self._disconnect()
        if final:
            await self._journal(NOTHING_RECEIVED)
        log.info("session %s: reception over", self.session_public_id)

    async def _receive(self) -> bool:
        """Subscribe, watch, subscribe again; answers whether a final sample is due."""
        while not self.ending:
            try:
                self.upstream = await Upstream.open(
                    self.client,
                    self.session_public_id,
                    await self.ice.settings(),
                    self.screen.sources if self.screen else None,
                    self.frames,
                    self.sound,
                    self.way,
                )
            except Refused as error:
                if error.status == 409:
                    log.info("session %s: the server has no broadcast on", self.session_public_id)
                    return True
                if error.status == 404:
                    log.error(
                        "session %s is not this venue's: not receiving it", self.session_public_id
                    )
                    return False
                if error.about_us:
                    self.link.refused(error)
                log.warning("session %s: subscribing refused (%s)", self.session_public_id, error)
                delay = self._backoff.cap_s
            except RateLimited as error:
                delay = error.retry_after
            except Unavailable as error:
                log.warning("session %s: cannot subscribe (%s)", self.session_public_id, error)
                delay = self._backoff.next()
            except Exception:
                log.exception("session %s: subscribing failed", self.session_public_id)
                delay = self._backoff.next()
            else:
                _, self._guard = guard_video(
                    [t.receiver for t in self.upstream.pc.getTransceivers() if t.kind == "video"]
                )
                if self.screen is not None:
                    self.screen.show(self.session_public_id)
                log.info("session %s: subscribed to the broadcast", self.session_public_id)
                upstream = self.upstream
                if await self._watch(upstream):
                    self._backoff.reset()
                if _never_carried_media(upstream):
                    self.ice.failed()  # the next subscription tries the next TURN transport
                await self._disconnect()
                delay = self._backoff.next()
            if not self.ending:
                await self._pause(delay)
        return True

    async def _watch(self, upstream: Upstream) -> bool:
        """Until the connection fails, goes silent, or the broadcast ends; answers whether it
        delivered frames for a good while."""
        while not self.ending:
            if upstream.closed:
                state = upstream.pc.connectionState
                log.warning("session %s: the connection is %s", self.session_public_id, state)
                break
            silence = upstream.silence(time.monotonic())
            if silence >= STALL_S:
                log.warning("session %s: no video for %.0f s", self.session_public_id, silence)
                break
            if self._move:
                self._move = False
                log.warning("session %s: moved to another media server", self.session_public_id)
                break
            if self._restart:
                # The publisher is back: once the old connection has gone quiet, a fresh
                # subscription gets it at once. Frames still flowing a while later: nothing to do.
                if silence >= DOWN_AFTER_S:
                    self._restart = False
                    break
                if time.monotonic() - self._restart_at > RESTART_WINDOW_S:
                    self._restart = False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), WATCH_S)
        frames_at = upstream.frames.last_at
        return frames_at is not None and frames_at - upstream.opened_at >= HEALTHY_S

    async def _pause(self, seconds: float) -> None:
        """Wait before subscribing again, unless the broadcast ends or starts again meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.ending and not self._restart and not self._move:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        self._restart = self._move = False

    async def _disconnect(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.cancel()
            await asyncio.gather(guard, return_exceptions=True)
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            await upstream.close()

    async def _sample_forever(self) -> None:
        """Every stats_s: one sample, whether or not anything is received."""
        measured: Upstream | None = None
        before = Totals()
        frames, freezes = self.frames.frames, self.frames.freezes
        started = due = time.monotonic()
        muted = self.sound.muted(started)
        while True:
            # On schedule, but never a burst of catching-up samples after the loop was held up.
            due = max(due + self.link.stats_s, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
            now = time.monotonic()
            upstream = self.upstream
            if upstream is not measured:
                measured, before = upstream, Totals()  # a new connection counts from zero
            after = before
            if upstream is not None:
                try:
                    after = await upstream.totals()
                except Exception:  # the connection closed under us: nothing more from it
                    log.debug("no stats from a closing connection", exc_info=True)
            muted_until_now = self.sound.muted(now)
            health = measure_health(
                before,
                after,
                seconds=now - started,
                frames=self.frames.frames - frames,
                freezes=self.frames.freezes - freezes,
                silence_s=self.frames.silence(now) if upstream is not None else None,
                # Without an audio track there is no sound to miss: the picture alone counts.
                muted_s=muted_until_now - muted
                if upstream is not None and upstream.offers_audio
                else None,
            )
            before, started, muted = after, now, muted_until_now
            frames, freezes = self.frames.frames, self.frames.freezes
            try:
                await self._journal(health)
            except Exception:
                log.exception("session %s: a sample could not be journaled", self.session_public_id)

    async def _journal(self, health: Health) -> None:
        """One sample into the outbox (the uploader sends it)."""
        moment = clock.now()
        # The server keeps one sample per whole second: never two in the same one.
        if int(moment.timestamp()) <= self._last_second:
            # At most a second: a clock set back must not hold the sample for longer.
            await asyncio.sleep(min(1.0, self._last_second + 1 - moment.timestamp()))
            moment = clock.now()
        self._last_second = int(moment.timestamp())
        payload = {
            "at": clock.iso(moment),
            "state": health.state,
            "bitrate_kbps": health.bitrate_kbps,
            "fps": health.fps,
            "loss_pct": health.loss_pct,
            "jitter_ms": health.jitter_ms,
            "audio_pct": health.audio_pct,
            "freezes": self.frames.freezes,
            "frames_decoded": self.frames.frames,
        }
        event = NewEvent(
            str(uuid.uuid4()), "sample", self.session_public_id, payload, clock.iso(moment)
        )
        await asyncio.to_thread(self.outbox.add, [event])
        self.latest = payload
        self.link.new_events.set()
        self.on_sample()
        log.debug("session %s: sample %s", self.session_public_id, payload)


def _never_carried_media(upstream: Upstream) -> bool:
    """The connection never got through (ICE or DTLS failed, or never finished) and no video
    frame came on it: its TURN transport is no good from here."""
    last = upstream.frames.last_at
    return upstream.pc.connectionState != "connected" and (
        last is None or last < upstream.opened_at
    )
