"""The broadcasts on air in this process: per session, one publisher feeding encoded pass-through
sources, and one subscriber connection per venue. Sources outlive publishers, so a publisher that
drops and republishes reaches the same subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from aiortc import RTCPeerConnection, RTCRtpCodecCapability, RTCSessionDescription

from passthrough.fanout import Outlet, RelayCounters, Source
from passthrough.peer import IceSettings, new_peer
from passthrough.playback import play
from passthrough.quality import Layer, QualityRule, QualityState
from passthrough.recorder import Recorder
from passthrough.wiring import (
    LOW_VIDEO,
    SOURCE_NAMES,
    Feed,
    LayerChoice,
    LayerSwitch,
    accept_publisher,
    answer_viewer,
    publisher_peer,
)
from server.domain.recordings import RecordedFacts
from server.rtc.recording_taps import (
    record_sources,
    recorded_facts,
    recording_name,
    recording_state,
)

log = logging.getLogger(__name__)

ENDED_STATES = ("failed", "closed")


class NotOnAir(Exception):
    """No broadcast is on for the session."""


class AlreadyOnAir(Exception):
    """The session is on air already."""


def _played(public_id: str, task: asyncio.Task[float]) -> None:
    """A replay's end: the recording played out (the broadcast stays on until ended)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("the replay of %s failed", public_id, exc_info=error)
    else:
        log.info("the replay of %s played %.0f s of its recording", public_id, task.result())


@dataclass(frozen=True)
class BroadcastStatus:
    """What the venue wall shows about a session's broadcast."""

    on: bool
    publishing: bool
    subscribers: int
    since: datetime | None
    quality: Mapping[str, Layer] = field(default_factory=dict)  # venue code → layer it gets
    recording: str = "off"  # "off" (not recorded), "on", or "stopped" (see recording_problem)
    recording_problem: str | None = None  # why it stopped: "disk_full" or "write_failed"


@dataclass(frozen=True)
class SourceFigures:
    """What one source of a broadcast receives from the publisher."""

    frames: int
    bitrate_bps: float
    picture: tuple[int, int] | None  # width, height of its last VP8 keyframe


@dataclass
class _Subscriber:
    pc: RTCPeerConnection
    outlets: list[Outlet]
    choice: LayerChoice | None = None

    @property
    def layer(self) -> Layer | None:
        """The video layer this venue is sent now (None when it gets no video)."""
        if self.choice is not None:
            return self.choice.layer
        return "high" if any(outlet.kind == "video" for outlet in self.outlets) else None


@dataclass
class Broadcast:
    """One session on air."""

    public_id: str
    venue_codes: tuple[str, ...]
    since: datetime
    sources: dict[str, Source]
    publisher: tuple[RTCPeerConnection, Feed] | None = None
    subscribers: dict[str, _Subscriber] = field(default_factory=dict)
    # Each venue's layer rule state, kept across its connections for the whole broadcast.
    qualities: dict[str, QualityState] = field(default_factory=dict)
    # The file the broadcast is recorded into, across every publisher it has.
    recorder: Recorder | None = None
    # A make-up session's broadcast: a recording played into the sources instead of a publisher.
    playback: asyncio.Task[float] | None = None

    @property
    def publishing(self) -> bool:
        """True while a publisher's connection is up or being set up, or a recording plays."""
        return self.publisher is not None or (
            self.playback is not None and not self.playback.done()
        )


@dataclass(frozen=True)
class Ended:
    """A broadcast taken off air, with what its recording holds (None when not recorded)."""

    public_id: str
    since: datetime
    recording: RecordedFacts | None


def _kind(name: str) -> str:
    return "video" if name == LOW_VIDEO else name


def _changed(before: RTCRtpCodecCapability, after: RTCRtpCodecCapability | None) -> bool:
    return after is None or before.mimeType.lower() != after.mimeType.lower()


class Broadcasts:
    """Every broadcast of this process; created and closed by the app's rtc context."""

    def __init__(
        self,
        ice: IceSettings,
        counters: RelayCounters | None = None,
        rule: QualityRule | None = None,
        recordings: Path | None = None,
        recording_stopped: Callable[[str, str], None] = lambda public_id, problem: None,
    ) -> None:
        self.ice = ice
        self.counters = counters or RelayCounters()
        self.rule = rule or QualityRule()
        self.recordings = recordings  # where broadcasts are recorded; None: not recorded
        self.recording_stopped = recording_stopped  # (session, problem): a recording gave up
        self._on_air: dict[str, Broadcast] = {}
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    def status(self, public_id: str) -> BroadcastStatus:
        """Whether the session is on air, with a publisher, and to how many venues."""
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            return BroadcastStatus(False, False, 0, None)
        quality = {
            code: layer
            for code, subscriber in broadcast.subscribers.items()
            if (layer := subscriber.layer) is not None
        }
        return BroadcastStatus(
            True,
            broadcast.publishing,
            len(broadcast.subscribers),
            broadcast.since,
            quality,
            *recording_state(broadcast.recorder),
        )

    def layer_switches(self, public_id: str) -> dict[str, list[LayerSwitch]]:
        """Every venue's video layer moves so far (for benchmarks and diagnosis)."""
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            return {}
        return {
            code: list(subscriber.choice.switches)
            for code, subscriber in broadcast.subscribers.items()
            if subscriber.choice is not None
        }

    def layers(self, public_id: str) -> dict[str, SourceFigures]:
        """What each source of the broadcast receives ("video-low": the low layer)."""
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            return {}
        return {
            name: SourceFigures(source.frames_in, source.bitrate_bps, source.picture)
            for name, source in broadcast.sources.items()
        }

    def on_air_for(self, venue_code: str) -> list[str]:
        """The sessions on air that this venue takes part in."""
        return [b.public_id for b in self._on_air.values() if venue_code in b.venue_codes]

    def subscriber_counts(self) -> dict[str, int]:
        """Subscribers per session on air (for the metrics)."""
        return {b.public_id: len(b.subscribers) for b in self._on_air.values()}

    async def publish(
        self,
        public_id: str,
        venue_codes: tuple[str, ...],
        offer: RTCSessionDescription,
        now: datetime,
    ) -> RTCSessionDescription:
        """Answer the publisher's offer; one already on is replaced (republish or takeover)."""
        async with self._lock:
            broadcast = self._on_air.get(public_id)
            if broadcast is None:
                sources = {name: Source(_kind(name), self.counters) for name in SOURCE_NAMES}
                broadcast = Broadcast(public_id, venue_codes, now, sources)
                broadcast.recorder = self._recorder(broadcast)
                self._on_air[public_id] = broadcast
            elif broadcast.recorder is not None:
                broadcast.recorder.await_keyframe()  # a new publisher: its own picture starts
            broadcast.venue_codes = venue_codes
            codecs_before = {kind: s.codec for kind, s in broadcast.sources.items()}
            pc = publisher_peer(self.ice)
            try:
                answer, feed = await accept_publisher(pc, offer, broadcast.sources, self.ice)
            except Exception:
                await pc.close()
                if broadcast.publisher is None and not broadcast.subscribers:
                    self._on_air.pop(public_id, None)
                raise
            # No await until the old publisher's feed is stopped: its frames never mix in.
            previous, broadcast.publisher = broadcast.publisher, (pc, feed)
            if previous is not None:
                previous[1].stop()
            self._watch(pc, lambda: self._publisher_gone(broadcast, pc, feed))
            if previous is not None:
                await previous[0].close()
            if any(
                before is not None and _changed(before, broadcast.sources[kind].codec)
                for kind, before in codecs_before.items()
            ):
                # Venues negotiated the old codec: they subscribe again when told it started.
                for subscriber in list(broadcast.subscribers.values()):
                    await self._close_subscriber(subscriber)
                broadcast.subscribers.clear()
            for subscriber in broadcast.subscribers.values():
                if subscriber.choice is not None:
                    # A page with one video track has no low layer: its venues go back up.
                    subscriber.choice.refresh()
            return answer

    async def replay(
        self, public_id: str, venue_codes: tuple[str, ...], recording: Path, now: datetime
    ) -> None:
        """Put a make-up session on air from a recording (never recorded again); AlreadyOnAir
        when it is on already."""
        async with self._lock:
            if public_id in self._on_air:
                raise AlreadyOnAir(public_id)
            sources = {name: Source(_kind(name), self.counters) for name in SOURCE_NAMES}
            broadcast = Broadcast(public_id, venue_codes, now, sources)
            broadcast.playback = asyncio.ensure_future(play(recording, sources))
            broadcast.playback.add_done_callback(partial(_played, public_id))
            self._on_air[public_id] = broadcast

    async def subscribe(
        self, public_id: str, venue_code: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Answer a venue's receive-only offer; a venue's earlier connection is replaced."""
        broadcast = self._on_air.get(public_id)
        if broadcast is None or all(s.codec is None for s in broadcast.sources.values()):
            raise NotOnAir(public_id)
        pc = new_peer(self.ice)
        state = broadcast.qualities.get(venue_code)
        if state is None:
            state = broadcast.qualities[venue_code] = QualityState(self.rule)
        else:
            state.rejoin(time.monotonic())
        try:
            answer, subscription = await answer_viewer(
                pc, offer, broadcast.sources, self.ice, self.rule, state
            )
        except Exception:
            await pc.close()
            raise
        subscriber = _Subscriber(pc, subscription.outlets, subscription.choice)
        previous = broadcast.subscribers.get(venue_code)
        broadcast.subscribers[venue_code] = subscriber
        self._watch(pc, lambda: self._subscriber_gone(broadcast, venue_code, subscriber))
        if previous is not None:
            await self._close_subscriber(previous)
        return answer

    def recording(self, public_id: str) -> Recorder | None:
        """The recorder of a session on air (None when off air or not recorded)."""
        broadcast = self._on_air.get(public_id)
        return None if broadcast is None else broadcast.recorder

    async def end(self, public_id: str) -> Ended | None:
        """Take the session off air, its recording finished; None when it was not on."""
        async with self._lock:
            broadcast = self._on_air.pop(public_id, None)
        if broadcast is None:
            return None
        return await self._shut(broadcast)

    async def close_all(self) -> list[Ended]:
        """Server shutdown: every connection closed, every watcher finished; what was on air."""
        async with self._lock:
            broadcasts = list(self._on_air.values())
            self._on_air.clear()
        ended = [await self._shut(broadcast) for broadcast in broadcasts]
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        return ended

    def _recorder(self, broadcast: Broadcast) -> Recorder | None:
        if self.recordings is None:
            return None
        return record_sources(
            broadcast.sources,
            self.recordings / recording_name(broadcast.public_id, broadcast.since),
            partial(self.recording_stopped, broadcast.public_id),
        )

    async def _shut(self, broadcast: Broadcast) -> Ended:
        if broadcast.playback is not None:
            broadcast.playback.cancel()
            await asyncio.gather(broadcast.playback, return_exceptions=True)
        if broadcast.publisher is not None:
            pc, feed = broadcast.publisher
            broadcast.publisher = None
            feed.stop()
            await pc.close()
        for subscriber in list(broadcast.subscribers.values()):
            await self._close_subscriber(subscriber)
        broadcast.subscribers.clear()
        for source in broadcast.sources.values():
            source.close()
        recorder = broadcast.recorder
        facts = None if recorder is None else recorded_facts(recorder.close())
        return Ended(broadcast.public_id, broadcast.since, facts)

    @staticmethod
    async def _close_subscriber(subscriber: _Subscriber) -> None:
        for outlet in subscriber.outlets:
            outlet.stop()
        await subscriber.pc.close()

    def _watch(self, pc: RTCPeerConnection, gone: Callable[[], object]) -> None:
        @pc.on("connectionstatechange")
        def changed() -> None:
            if pc.connectionState in ENDED_STATES:
                gone()

    def _publisher_gone(self, broadcast: Broadcast, pc: RTCPeerConnection, feed: Feed) -> None:
        """The publisher's connection failed: subscribers stay, waiting for a republish."""
        feed.stop()
        if broadcast.publisher is not None and broadcast.publisher[0] is pc:
            broadcast.publisher = None
            log.info("the publisher of %s left; waiting for it to republish", broadcast.public_id)
        self._close_later(pc)

    def _subscriber_gone(self, broadcast: Broadcast, code: str, subscriber: _Subscriber) -> None:
        for outlet in subscriber.outlets:
            outlet.stop()
        if broadcast.subscribers.get(code) is subscriber:
            del broadcast.subscribers[code]
        self._close_later(subscriber.pc)

    def _close_later(self, pc: RTCPeerConnection) -> None:
        task = asyncio.ensure_future(pc.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
