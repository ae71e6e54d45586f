"""The Janus media backend (HETANG_MEDIA=janus), behind the same Relay interface as the built-in
relay. A broadcast is a VideoRoom on the origin; the operator's page publishes into it through
our server. Each venue receives from an edge picked by load (the origin when there are no
edges): the edge gets the broadcast as a VideoRoom remote publisher the origin forwards to, and
Janus makes the offer the venue's agent answers (POST …/subscribe/offer, then …/answer). When an
edge dies its venues are told `broadcast_moved` and subscribe again, onto a living edge.

Make-up sessions (补学) play recordings, which the built-in relay does: replays go to it, and so
do their agents' own offers. Broadcasts carried by Janus are recorded into the same WebM files
(server.rtc.janus_recording: the server subscribes on the origin like one more venue)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiohttp
from aiortc import RTCSessionDescription

from passthrough.ports import PortRange
from passthrough.quality import HIGH, Layer
from server.domain.janus_events import MediaReport
from server.rtc import videoroom
from server.rtc.broadcasts import AlreadyOnAir, BroadcastStatus, Ended, NotOnAir
from server.rtc.janus import JanusError, JanusHandle, Jsep, detach_quietly
from server.rtc.janus_edges import feed_on, forget_edge
from server.rtc.janus_quality import subscribed_mids, two_layers
from server.rtc.janus_recording import JanusRecording
from server.rtc.janus_state import JanusBroadcast, Subscription
from server.rtc.janus_tree import Instance, Tree
from server.rtc.recording_taps import recorded_facts, recording_name, recording_state
from server.rtc.relay_link import (
    AgentOffers,
    EngineUnavailable,
    LocalRelay,
    NoSuchOffer,
    Offered,
    Published,
    ServerOffers,
)

log = logging.getLogger(__name__)

UP_WITHIN_S = 15.0  # the publisher's connection comes up within this, or venues wait in vain
PUBLISHER_LIFETIME_S = 24 * 3600.0  # a watch on the publisher's hangup outlives any lesson

P = ParamSpec("P")
T = TypeVar("T")
Moved = Callable[[str, tuple[str, ...]], Awaitable[None]]


def engine_errors(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Janus's refusals and silences, as the relay interface names them."""

    @functools.wraps(method)
    async def named(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (JanusError, aiohttp.ClientError, OSError, TimeoutError) as error:
            raise EngineUnavailable(str(error)) from error

    return named


class JanusRelay:
    """Broadcasts in Janus rooms; make-up replays in the built-in relay beside it."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        urls: tuple[str, ...],
        forward_ports: PortRange,
        builtin: LocalRelay,
        moved: Moved,
        regions: tuple[str, ...] = (),
    ) -> None:
        self.tree = Tree(http, urls, self._edge_lost, regions)
        self.forward_ports = forward_ports
        self.builtin = builtin
        self.moved = moved
        self._on_air: dict[str, JanusBroadcast] = {}
        # Recorded as the built-in relay records (its directory; None: not recorded).
        broadcasts = builtin.broadcasts
        self.recordings, self.recording_stopped = (
            broadcasts.recordings,
            broadcasts.recording_stopped,
        )

    async def start(self) -> None:
        await self.tree.start()

    async def close(self) -> list[Ended]:
        """Take every broadcast off air (their recordings finished); what was on air."""
        ended = []
        for public_id in list(self._on_air):
            try:
                done = await self.end(public_id)
            except Exception:
                log.exception("ending %s on the way out failed", public_id)
                continue
            if done is not None:
                ended.append(done)
        await self.tree.close()
        return ended

    async def _builtin_has(self, public_id: str) -> bool:
        return (await self.builtin.status(public_id)).on

    async def status(self, public_id: str) -> BroadcastStatus:
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            return await self.builtin.status(public_id)
        started = [s for s in broadcast.subscriptions.values() if s.started]
        layers = {s.venue_code: s.layer for s in started} if two_layers(broadcast.streams) else {}
        recorder = None if broadcast.recording is None else broadcast.recording.recorder
        return BroadcastStatus(
            True,
            broadcast.up.is_set(),
            len(started),
            broadcast.since,
            layers,
            *recording_state(recorder),
        )

    async def on_air_for(self, venue_code: str) -> list[str]:
        mine = [b.public_id for b in self._on_air.values() if venue_code in b.venue_codes]
        return mine + await self.builtin.on_air_for(venue_code)

    @engine_errors
    async def publish(
        self,
        public_id: str,
        venue_codes: tuple[str, ...],
        offer: RTCSessionDescription,
        now: datetime,
    ) -> Published:
        if await self._builtin_has(public_id):
            raise AlreadyOnAir(public_id)
        control = await self.tree.ensure_origin()
        broadcast = self._on_air.get(public_id)
        if broadcast is not None and not await videoroom.room_exists(control, broadcast.room):
            await videoroom.create_room(control, broadcast.room)  # a restarted origin lost it
        if broadcast is None:
            broadcast = JanusBroadcast(public_id, 1 + secrets.randbelow(2**31), venue_codes, now)
            await videoroom.create_room(control, broadcast.room)
            if self.recordings is not None:
                broadcast.recording = JanusRecording(
                    self.recordings / recording_name(public_id, now),
                    partial(self.recording_stopped, public_id),
                )
            self._on_air[public_id] = broadcast
        async with broadcast.lock:
            await self._drop_publisher(broadcast)  # a republish replaces the publisher
            handle = await control.session.attach(opaque_id=f"hetang-operator-{public_id}")
            try:
                published = await videoroom.publish(
                    handle, broadcast.room, "main", Jsep(offer.type, offer.sdp)
                )
            except JanusError as error:
                await detach_quietly(handle)
                raise ValueError(f"Janus refused the offer: {error.reason}") from None
            broadcast.publisher, broadcast.feed = handle, published.feed
            broadcast.streams = published.streams
            broadcast.up.clear()
            broadcast.watcher = asyncio.create_task(self._went_up(broadcast, handle))
        answer = RTCSessionDescription(sdp=published.answer.sdp, type=published.answer.type)
        recording = broadcast.recording
        return Published(answer, None if recording is None else recording.name)

    async def _went_up(self, broadcast: JanusBroadcast, handle: JanusHandle) -> None:
        """While the publisher's connection is up (Janus has the feed only then) venues may
        subscribe, and the recording follows the feed; when the page's connection hangs up,
        venues asking meanwhile wait for its republish."""
        try:
            await handle.wait_for("webrtcup", within_s=UP_WITHIN_S * 4)
        except TimeoutError:
            log.warning("the publisher of %s never connected to Janus", broadcast.public_id)
            return
        broadcast.up.set()
        await self._record(broadcast)
        with contextlib.suppress(TimeoutError):
            await handle.wait_for("hangup", within_s=PUBLISHER_LIFETIME_S)
        log.info("the publisher of %s left; waiting for it to republish", broadcast.public_id)
        broadcast.up.clear()

    async def _record(self, broadcast: JanusBroadcast) -> None:
        recording, session = broadcast.recording, self.tree.origin.session
        if recording is None or session is None:
            return
        try:
            mids = subscribed_mids(broadcast.streams, HIGH)
            await recording.follow(
                session, broadcast.room, broadcast.feed, mids, broadcast.public_id
            )
        except (JanusError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            log.error(
                "the recording of %s cannot receive the broadcast: %s", broadcast.public_id, error
            )

    async def replay(
        self, public_id: str, venue_codes: tuple[str, ...], recording: Path, now: datetime
    ) -> None:
        if public_id in self._on_air:
            raise AlreadyOnAir(public_id)
        await self.builtin.replay(public_id, venue_codes, recording, now)

    async def subscribe(
        self, public_id: str, venue_code: str, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        if public_id in self._on_air:
            raise ServerOffers(public_id)
        return await self.builtin.subscribe(public_id, venue_code, offer)

    @engine_errors
    async def offer(
        self, public_id: str, venue_code: str, regions: tuple[str, ...] = ()
    ) -> Offered:
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            if await self._builtin_has(public_id):
                raise AgentOffers(public_id)
            raise NotOnAir(public_id)
        try:
            async with asyncio.timeout(UP_WITHIN_S):
                await broadcast.up.wait()
        except TimeoutError:
            raise NotOnAir(public_id) from None
        async with broadcast.lock:
            for stale in [t for t, s in broadcast.offers.items() if s.venue_code == venue_code]:
                await self._unsubscribe(broadcast.offers.pop(stale))  # never answered
            current = broadcast.subscriptions.get(venue_code)
            edge = self.tree.pick_edge(
                current.edge if current is not None else None,
                lambda edge: self._load(edge, venue_code),
                regions,
            )
            feed = await feed_on(self.tree, broadcast, edge, self.forward_ports)
            assert edge.session is not None
            layer = self._layer_for(broadcast, venue_code)
            handle = await edge.session.attach(opaque_id=f"hetang-venue-{venue_code}")
            try:
                mids = subscribed_mids(broadcast.streams, layer)
                jsep = await videoroom.subscribe(handle, broadcast.room, feed, mids)
            except JanusError:
                await detach_quietly(handle)
                raise
            token = secrets.token_urlsafe(12)
            broadcast.offers[token] = Subscription(venue_code, edge, handle, layer)
        return Offered(token, RTCSessionDescription(sdp=jsep.sdp, type=jsep.type))

    async def answer(
        self, public_id: str, venue_code: str, token: str, answer: RTCSessionDescription
    ) -> None:
        broadcast = self._on_air.get(public_id)
        if broadcast is None:
            raise NotOnAir(public_id)
        offered = broadcast.offers.get(token)
        if offered is None or offered.venue_code != venue_code or offered.answered:
            raise NoSuchOffer(token)
        # It stays among the offers (counted in its edge's load) until Janus has started it.
        offered.answered = True
        try:
            await videoroom.start(offered.handle, Jsep(answer.type, answer.sdp))
        except JanusError as error:
            broadcast.offers.pop(token, None)
            await detach_quietly(offered.handle)
            raise ValueError(f"Janus refused the answer: {error.reason}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            broadcast.offers.pop(token, None)
            raise EngineUnavailable(str(error)) from error
        if broadcast.offers.pop(token, None) is None:
            return  # the edge died, or the broadcast ended, meanwhile
        offered.started = True
        earlier = broadcast.subscriptions.get(venue_code)
        broadcast.subscriptions[venue_code] = offered
        if earlier is not None:
            await self._unsubscribe(earlier)

    async def end(self, public_id: str) -> Ended | None:
        broadcast = self._on_air.pop(public_id, None)
        if broadcast is None:
            return await self.builtin.end(public_id)
        async with broadcast.lock:
            for subscription in [*broadcast.subscriptions.values(), *broadcast.offers.values()]:
                await self._unsubscribe(subscription)
            await self._drop_publisher(broadcast)
            for instance in (self.tree.origin, *self.tree.edges):
                if instance.alive:
                    with contextlib.suppress(JanusError, aiohttp.ClientError, TimeoutError):
                        await videoroom.destroy_room(instance.handle(), broadcast.room)
        recording = broadcast.recording
        facts = None if recording is None else recorded_facts(await recording.close())
        return Ended(public_id, broadcast.since, facts)

    async def _edge_lost(self, edge: Instance) -> None:
        """Forget what the dead edge carried and tell its venues to subscribe again."""
        for broadcast in list(self._on_air.values()):
            async with broadcast.lock:
                venues = await forget_edge(self.tree, broadcast, edge)
            if venues:
                log.warning(
                    "session %s: moving venues %s off %s",
                    broadcast.public_id,
                    ",".join(sorted(venues)),
                    edge.name,
                )
                await self.moved(broadcast.public_id, venues)

    def _layer_for(self, broadcast: JanusBroadcast, venue_code: str) -> Layer:
        """The layer a venue subscribing now gets: the rule's, which forgets what it knew of a
        connection the venue lost (not of one replaced for a change of layer)."""
        if not two_layers(broadcast.streams):
            return HIGH
        if venue_code in broadcast.switching:
            broadcast.switching.discard(venue_code)
        else:
            broadcast.quality.state(venue_code).rejoin(time.monotonic())
        return broadcast.quality.layer(venue_code)

    async def media_reports(self, reports: list[MediaReport]) -> None:
        """Janus's reports of the venues' handles: a venue whose layer the rule changes
        subscribes again, to the other picture."""
        handles = {
            subscription.handle.id: (broadcast, subscription)
            for broadcast in self._on_air.values()
            if two_layers(broadcast.streams)
            for subscription in broadcast.subscriptions.values()
        }
        for report in reports:
            found = handles.get(report.handle_id)
            if found is None:
                continue
            broadcast, subscription = found
            venue = subscription.venue_code
            if broadcast.quality.report(venue, report) and venue not in broadcast.switching:
                layer = broadcast.quality.layer(venue)
                log.info("session %s: %s goes to the %s picture", broadcast.public_id, venue, layer)
                broadcast.switching.add(venue)
                await self.moved(broadcast.public_id, (venue,))

    def _load(self, edge: Instance, but: str) -> int:
        """The venues (other than `but`) receiving from this edge, or offered it, across
        broadcasts."""
        return len(
            {
                (broadcast.public_id, subscription.venue_code)
                for broadcast in self._on_air.values()
                for subscription in (*broadcast.subscriptions.values(), *broadcast.offers.values())
                if subscription.edge is edge and subscription.venue_code != but
            }
        )

    async def _unsubscribe(self, subscription: Subscription) -> None:
        subscription.started = False
        if subscription.edge.alive:
            await detach_quietly(subscription.handle)

    async def _drop_publisher(self, broadcast: JanusBroadcast) -> None:
        handle, broadcast.publisher = broadcast.publisher, None
        if handle is None:
            return
        if broadcast.watcher is not None:
            broadcast.watcher.cancel()
        await detach_quietly(handle)
        # The edges' remote publishers carried the old feed: venues subscribe again (they are
        # told broadcast_started), each edge getting the new feed when a venue needs it.
        for edge in self.tree.edges:
            feed = broadcast.edge_feeds.pop(edge.url, None)
            if feed is not None and edge.alive:
                with contextlib.suppress(JanusError, aiohttp.ClientError, TimeoutError):
                    await videoroom.remove_remote_publisher(edge.handle(), broadcast.room, feed)
        for subscription in list(broadcast.subscriptions.values()):
            await self._unsubscribe(subscription)
        broadcast.subscriptions.clear()
