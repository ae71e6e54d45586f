"""Fan-out of encoded frames: one Source per media kind of a broadcast, one bounded RelayTrack per
subscriber. A subscriber that falls behind is flushed and waits for the next keyframe; nobody else
waits for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiortc import MediaStreamTrack, RTCRtpCodecCapability
from aiortc.codecs import get_encoder
from aiortc.mediastreams import MediaStreamError

from passthrough.frames import EncodedPacket, clock_rate, is_keyframe, to_packet

log = logging.getLogger(__name__)

VIDEO_QUEUE = 30  # frames: one second at 30 fps
AUDIO_QUEUE = 50  # frames: one second of 20 ms Opus
KEYFRAME_INTERVAL_S = 0.5  # at most this often a PLI goes to the publisher

KeyframeRequester = Callable[[], Awaitable[None]]


@dataclass
class RelayCounters:
    """Totals for the metrics endpoint (plain counters, read at scrape time)."""

    frames_forwarded: int = 0
    bytes_forwarded: int = 0
    keyframe_requests: int = 0
    resyncs: int = 0


class SharedPacketizer:
    """Splits each frame into RTP payloads once for every subscriber of a source (the senders
    all get the same packet object, so the last result is reused)."""

    def __init__(self, codec: RTCRtpCodecCapability) -> None:
        self._encoder = get_encoder(codec)  # type: ignore[arg-type]  # only mimeType is read
        self._last: EncodedPacket | None = None
        self._packed: tuple[list[bytes], int] = ([], 0)

    def pack(self, packet: EncodedPacket) -> tuple[list[bytes], int]:
        """The payloads and RTP timestamp of this packet, computed once."""
        if packet is not self._last:
            self._packed = self._encoder.pack(packet)
            self._last = packet
        return self._packed


class RelayTrack(MediaStreamTrack):
    """The track one subscriber's sender reads: packets from the source, in a bounded queue."""

    def __init__(self, source: Source, capacity: int) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._queue: asyncio.Queue[EncodedPacket | None] = asyncio.Queue(capacity)
        self.waiting_for_keyframe = source.kind == "video"

    def offer(self, packet: EncodedPacket, keyframe: bool) -> bool:
        """Queue a packet; answers False when it was dropped (not yet resynchronised)."""
        if self.readyState != "live":
            return False
        if self.waiting_for_keyframe:
            if not keyframe:
                return False
            self.waiting_for_keyframe = False
        if self._queue.full():
            self._flush()
            if self.kind == "video" and not keyframe:
                # Decoding can only resume at a keyframe: drop until one comes.
                self.waiting_for_keyframe = True
                self._source.resynchronise()
                return False
        self._queue.put_nowait(packet)
        return True

    def _flush(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def recv(self) -> EncodedPacket:
        """The next packet for the sender; ends when the track is stopped."""
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        """Leave the source and wake a sender waiting in recv()."""
        if self.readyState == "live":
            self._source.detach(self)
            self._flush()
            self._queue.put_nowait(None)
        super().stop()


class Source:
    """One media kind of one broadcast: takes the publisher's encoded frames and hands each to
    every subscriber's track. Outlives publishers, so a republish reaches the same subscribers."""

    def __init__(
        self,
        kind: str,
        counters: RelayCounters,
        *,
        keyframe_interval_s: float = KEYFRAME_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.codec: RTCRtpCodecCapability | None = None
        self.packetizer: SharedPacketizer | None = None
        self.counters = counters
        self._tracks: set[RelayTrack] = set()
        self._requester: KeyframeRequester | None = None
        self._interval = keyframe_interval_s
        self._clock = clock
        self._last_request = -float("inf")
        self._pending: set[asyncio.Task[None]] = set()
        self._rate = clock_rate(kind)
        self._offset: int | None = None
        self._last_pts: int | None = None
        self._last_at = 0.0
        self.frames_in = 0

    @property
    def subscribers(self) -> int:
        """How many subscriber tracks are attached."""
        return len(self._tracks)

    @property
    def connected(self) -> bool:
        """True while a publisher feeds this source."""
        return self._requester is not None

    def attach(self) -> RelayTrack:
        """A new subscriber's track; it starts at the next keyframe, which is asked for now."""
        track = RelayTrack(self, VIDEO_QUEUE if self.kind == "video" else AUDIO_QUEUE)
        self._tracks.add(track)
        if self.kind == "video":
            self.request_keyframe()
        return track

    def detach(self, track: RelayTrack) -> None:
        """Forget a subscriber's track."""
        self._tracks.discard(track)

    def connect(self, codec: RTCRtpCodecCapability, requester: KeyframeRequester) -> None:
        """A publisher starts feeding this source; its timestamps are rebased onto ours."""
        if self.codec is None or self.codec.mimeType.lower() != codec.mimeType.lower():
            self.packetizer = SharedPacketizer(codec)
        self.codec = codec
        self._requester = requester
        self._offset = None

    def disconnect(self, requester: KeyframeRequester | None = None) -> None:
        """The publisher stopped (only if it is still the current one)."""
        if requester is None or requester is self._requester:
            self._requester = None

    def push(self, codec_name: str, data: bytes, timestamp: int) -> None:
        """One encoded frame from the publisher, to every subscriber."""
        self.frames_in += 1
        now = self._clock()
        if self._offset is None:
            # A new publisher starts its clock at 0: continue ours from where it was.
            if self._last_pts is None:
                self._offset = -timestamp
            else:
                gap = max(1, int((now - self._last_at) * self._rate))
                self._offset = self._last_pts + gap - timestamp
        pts = timestamp + self._offset
        self._last_pts, self._last_at = pts, now
        if not self._tracks:
            return
        keyframe = is_keyframe(codec_name, data)
        packet = to_packet(data, pts, self._rate)
        delivered = sum(1 for track in list(self._tracks) if track.offer(packet, keyframe))
        self.counters.frames_forwarded += delivered
        self.counters.bytes_forwarded += delivered * len(data)
        if not keyframe and any(track.waiting_for_keyframe for track in self._tracks):
            # The keyframe asked for went by before this subscriber started waiting (or never
            # came): ask again, once the interval allows.
            self.request_keyframe()

    def resynchronise(self) -> None:
        """A subscriber fell behind and was flushed."""
        self.counters.resyncs += 1
        self.request_keyframe()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per interval (the ones asked for in
        between are served by the keyframe already on its way, or else asked for again by push()
        once the interval is over)."""
        if self.kind != "video" or self._requester is None:
            return
        now = self._clock()
        if now - self._last_request < self._interval:
            return
        self._last_request = now
        self.counters.keyframe_requests += 1
        task = asyncio.ensure_future(self._requester())
        self._pending.add(task)
        task.add_done_callback(self._request_done)

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a keyframe request failed: %s", task.exception())

    def close(self) -> None:
        """End every subscriber's track and drop pending requests."""
        self._requester = None
        for track in list(self._tracks):
            track.stop()
        for task in list(self._pending):
            task.cancel()
