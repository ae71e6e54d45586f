"""Recording a broadcast carried by Janus, as the built-in relay records its own: the server
subscribes to the broadcast on the origin like one more venue (an aiortc peer answering Janus's
offer, for the sound and the full picture), and the encoded frames it receives go, never
decoded, into the same WebM recorder (passthrough.recorder). The file is opened when the
broadcast goes on air; after a republish the new publisher's frames continue it, the time away
a gap in it, as with the built-in relay."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from aiortc import RTCPeerConnection, RTCSessionDescription

from passthrough.fanout import RelayCounters, Source
from passthrough.peer import IceSettings, before_gathering, new_peer
from passthrough.recorder import RecordingSummary
from passthrough.wiring import Feed, tap_peer
from server.rtc import videoroom
from server.rtc.janus import JanusHandle, JanusSession, Jsep, detach_quietly
from server.rtc.recording_taps import record_sources

log = logging.getLogger(__name__)


class JanusRecording:
    """One broadcast's recording: the recorder and its sources, fed by the current tap."""

    def __init__(self, path: Path, on_stop: Callable[[str], None]) -> None:
        self.counters = RelayCounters()
        self.sources = {kind: Source(kind, self.counters) for kind in ("audio", "video")}
        self.recorder = record_sources(self.sources, path, on_stop)
        self._tap: tuple[RTCPeerConnection, Feed, JanusHandle] | None = None

    @property
    def name(self) -> str:
        return self.recorder.path.name

    async def follow(
        self, session: JanusSession, room: int, feed: int, mids: list[str], public_id: str
    ) -> None:
        """Receive the publisher's feed (a new one after a republish) into the recorder."""
        await self._drop_tap()
        self.recorder.await_keyframe()
        handle = await session.attach(opaque_id=f"hetang-recorder-{public_id}")
        # Every address but loopback: Janus offers none, and the server's own ICE setting is
        # for venues and operators, not for this leg inside the media network.
        ice = IceSettings()
        pc = new_peer(ice)
        try:
            offer = await videoroom.subscribe(handle, room, feed, mids)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
            tap = tap_peer(pc, self.sources, decode=False)
            before_gathering(pc, ice)
            await pc.setLocalDescription(await pc.createAnswer())
            await videoroom.start(handle, Jsep("answer", pc.localDescription.sdp))
        except BaseException:
            await pc.close()
            await detach_quietly(handle)
            raise
        tap.connect(pc.localDescription.sdp)
        self._tap = (pc, tap, handle)

    async def close(self) -> RecordingSummary:
        """Stop receiving; the finished recording's summary."""
        await self._drop_tap()
        for source in self.sources.values():
            source.close()
        return self.recorder.close()

    async def _drop_tap(self) -> None:
        if self._tap is None:
            return
        pc, tap, handle = self._tap
        self._tap = None
        tap.stop()
        await pc.close()
        await detach_quietly(handle)
