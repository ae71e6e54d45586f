"""Fan-out of encoded frames: one Source per media kind (and video layer) of a broadcast, one Outlet
per subscriber and kind. Each frame is packetized once and sent to every subscriber in turn, on
the loop that received it. A subscriber that falls behind is skipped and resumes at the next
keyframe (video only: audio is never skipped); nobody waits for it. A video outlet can move to
another layer's source: it keeps the old one until the new one's keyframe, and its SSRC, sequence
numbers and timestamps go on as if nothing happened."""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpCodecCapability
from aiortc.clock import current_ntp_time
from aiortc.codecs import get_encoder
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket
from pylibsrtp import Error as SrtpError

from passthrough.frames import (
    EncodedPacket,
    clock_rate,
    is_keyframe,
    to_packet,
    vp8_picture_size,
)
from passthrough.hooks import SenderLink, send_datagram

log = logging.getLogger(__name__)

MAX_BACKLOG = 256 * 1024  # bytes waiting in a subscriber's socket before its video is skipped
KEYFRAME_INTERVAL_S = 0.5  # at most this often a PLI goes to the publisher
BITRATE_WINDOW_S = 1.0  # a source's bitrate is measured over windows this long
BITRATE_SMOOTHING = 0.5  # weight of the newest window
RTP_MASK = 0xFFFFFFFF

KeyframeRequester = Callable[[], Awaitable[None]]
# Sees every frame a source passes on: (codec name, data, continuous pts, keyframe).
FrameTap = Callable[[str, bytes, int, bool], None]


@dataclass
class RelayCounters:
    """Totals for the metrics endpoint (plain counters, read at scrape time)."""

    frames_forwarded: int = 0
    bytes_forwarded: int = 0
    keyframe_requests: int = 0
    resyncs: int = 0


class SharedPacketizer:
    """Splits each frame into RTP payloads, once for every subscriber of a source (aiortc's
    encoder of the codec, used only for its packetizer)."""

    def __init__(self, codec: RTCRtpCodecCapability) -> None:
        self._encoder = get_encoder(codec)  # type: ignore[arg-type]  # only mimeType is read

    def pack(self, packet: EncodedPacket) -> tuple[list[bytes], int]:
        """The payloads and RTP timestamp of this packet."""
        return self._encoder.pack(packet)


@dataclass(frozen=True)
class PackedFrame:
    """One encoded frame, split into RTP payloads once for every subscriber."""

    payloads: list[bytes]
    timestamp: int  # RTP units since the source's start
    keyframe: bool
    ntp: int  # when it is sent, for sender reports
    abs_send_time: int  # the 24-bit header extension value

    @property
    def size(self) -> int:
        """Payload bytes."""
        return sum(len(payload) for payload in self.payloads)


class Outlet:
    """One subscriber's media of one kind: each frame's packets are protected and sent straight
    to the subscriber (no queue, no task per subscriber; aiortc keeps RTCP, NACK and reports).
    A subscriber whose socket backs up is skipped, then resumes at the next keyframe."""

    def __init__(self, source: Source, link: SenderLink) -> None:
        self.kind = source.kind
        self._source = source
        self._link = link
        self._sequence = secrets.randbelow(1 << 15)  # low half, as aiortc and Chrome do
        self._offset = secrets.randbelow(1 << 32)  # our RTP timestamp = the source's + this
        self._pending: Source | None = None  # the layer to move to at its next keyframe
        self._last_timestamp: int | None = None  # the last RTP timestamp sent
        self._last_sent_at = 0.0
        self._step = source.rate // 30  # RTP units between the last two frames sent
        self.moved: Callable[[Source], None] | None = None  # told after each move
        self.waiting_for_keyframe = source.kind == "video"
        self.connected = False
        self.stopped = False

    @property
    def source(self) -> Source:
        """The source this outlet is fed from now."""
        return self._source

    @property
    def pending(self) -> Source | None:
        """The source it moves to at that source's next keyframe, if any."""
        return self._pending

    def switch_to(self, target: Source) -> None:
        """Be fed from `target` (another layer of the same kind and codec) from its next
        keyframe on; until then the current source goes on. Before anything was sent, at once."""
        if self.stopped:
            return
        if self._pending is not None and self._pending is not target:
            self._pending.leave(self)
            self._pending = None
        if target is self._source or target is self._pending:
            return
        if self._last_timestamp is None:
            self._move(target, None)
            return
        self._pending = target
        target.expect(self)

    def take_keyframe(self, target: Source, frame: PackedFrame) -> bool:
        """`target`'s keyframe came: move over when this subscriber can take it now."""
        if self._pending is not target or self.stopped or self._link.route() is None:
            return False
        self._move(target, frame)
        return True

    def _move(self, target: Source, frame: PackedFrame | None) -> None:
        self._source.detach(self)
        target.leave(self)
        self._source, self._pending = target, None
        target.adopt(self)
        if frame is None and self.waiting_for_keyframe:
            target.request_keyframe()
        if frame is not None and self._last_timestamp is not None:
            # Continue our timeline one frame (or the time that passed, if longer) on.
            elapsed = int((target.clock() - self._last_sent_at) * target.rate)
            gap = max(self._step, min(elapsed, target.rate))
            self._offset = (self._last_timestamp + gap - frame.timestamp) & RTP_MASK
        if self.moved is not None:
            self.moved(target)

    def offer(self, frame: PackedFrame) -> bool:
        """Send the frame if this subscriber can take it; False when it was skipped."""
        if self.stopped:
            return False
        route = self._link.route()
        self.connected = route is not None
        if route is None:
            return False
        if self.waiting_for_keyframe:
            if not frame.keyframe:
                return False
            self.waiting_for_keyframe = False
        srtp, protocol, address = route
        # A TURN-relayed pair's transport (aioice's TurnTransport) has no write buffer to ask.
        backlog = getattr(getattr(protocol, "transport", None), "get_write_buffer_size", None)
        if self.kind == "video" and backlog is not None and backlog() > MAX_BACKLOG:
            # Video gives way; audio is small and always goes out.
            self.waiting_for_keyframe = True
            self._source.resynchronise()
            return False
        self._send(frame, srtp, protocol, address)
        return True

    def _send(self, frame: PackedFrame, srtp: Any, protocol: Any, address: tuple[str, int]) -> None:
        link = self._link
        payload_type = link.payload_type or 0
        timestamp = (self._offset + frame.timestamp) & RTP_MASK
        if self._last_timestamp is not None:
            step = (timestamp - self._last_timestamp) & RTP_MASK
            if 0 < step < self._source.rate:
                self._step = step
        self._last_timestamp, self._last_sent_at = timestamp, self._source.clock()
        extensions = HeaderExtensions(mid=link.mid, abs_send_time=frame.abs_send_time)
        profile, value = link.extensions.set(extensions)
        first = 0x90 if value else 0x80
        extension = struct.pack("!HH", profile, len(value) >> 2) + value if value else b""
        last = len(frame.payloads) - 1
        for index, payload in enumerate(frame.payloads):
            sequence = self._sequence
            marker = 1 if index == last else 0
            header = struct.pack(
                "!BBHLL", first, (marker << 7) | payload_type, sequence, timestamp, link.ssrc
            )
            # Kept for aiortc's NACK handling, which retransmits from the sender's history.
            packet = RtpPacket(payload_type, marker, sequence, timestamp, link.ssrc, payload)
            packet.extensions = extensions
            link.history[sequence % RTP_HISTORY_SIZE] = packet
            try:
                send_datagram(protocol, srtp.protect(header + extension + payload), address)
            except (OSError, SrtpError) as error:
                log.debug("a packet to a subscriber was not sent: %s", error)
            self._sequence = (sequence + 1) & 0xFFFF
        link.sent(frame.ntp, timestamp, len(frame.payloads), frame.size)

    def stop(self) -> None:
        """Leave the source for good."""
        if not self.stopped:
            self.stopped = True
            self._source.detach(self)
            if self._pending is not None:
                self._pending.leave(self)
                self._pending = None


class Source:
    """One media kind of one broadcast: takes the publisher's encoded frames and hands each to
    every subscriber. Outlives publishers, so a republish reaches the same subscribers."""

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
        self._outlets: set[Outlet] = set()
        self._joining: set[Outlet] = set()  # outlets of another layer waiting for our keyframe
        self._requester: KeyframeRequester | None = None
        self._interval = keyframe_interval_s
        self.clock = clock
        self._last_request = -float("inf")
        self._pending: set[asyncio.Task[None]] = set()
        self.rate = clock_rate(kind)
        self._offset: int | None = None
        self._last_pts: int | None = None
        self._last_at = 0.0
        self._window_start: float | None = None
        self._window_bytes = 0
        self.bitrate_bps = 0.0  # what the publisher sends on it, smoothed
        self.picture: tuple[int, int] | None = None  # width, height of the last VP8 keyframe
        self.frames_in = 0
        self.taps: list[FrameTap] = []  # a recorder, for one

    @property
    def subscribers(self) -> int:
        """How many subscribers are attached."""
        return len(self._outlets)

    @property
    def connected(self) -> bool:
        """True while a publisher feeds this source."""
        return self._requester is not None

    def attach(self, link: SenderLink) -> Outlet:
        """A new subscriber; video starts at the next keyframe, which is asked for now."""
        outlet = Outlet(self, link)
        self._outlets.add(outlet)
        if self.kind == "video":
            self.request_keyframe()
        return outlet

    def detach(self, outlet: Outlet) -> None:
        """Forget a subscriber."""
        self._outlets.discard(outlet)

    def expect(self, outlet: Outlet) -> None:
        """An outlet of another layer moves here at our next keyframe, asked for now."""
        self._joining.add(outlet)
        self.request_keyframe()

    def leave(self, outlet: Outlet) -> None:
        """An outlet no longer waits to move here."""
        self._joining.discard(outlet)

    def adopt(self, outlet: Outlet) -> None:
        """An outlet that moved here from another layer."""
        self._outlets.add(outlet)

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
        now = self.clock()
        if self._offset is None:
            # A new publisher starts its clock at 0: continue ours from where it was.
            if self._last_pts is None:
                self._offset = -timestamp
            else:
                gap = max(1, int((now - self._last_at) * self.rate))
                self._offset = self._last_pts + gap - timestamp
        pts = timestamp + self._offset
        self._last_pts, self._last_at = pts, now
        self._measure(len(data), now)
        keyframe = is_keyframe(codec_name, data)
        if keyframe and self.kind == "video" and codec_name.upper() == "VP8":
            self.picture = vp8_picture_size(data)
        for tap in self.taps:
            tap(codec_name, data, pts, keyframe)
        if not (self._outlets or self._joining) or self.packetizer is None:
            return
        payloads, rtp_timestamp = self.packetizer.pack(to_packet(data, pts, self.rate))
        ntp = current_ntp_time()
        frame = PackedFrame(payloads, rtp_timestamp, keyframe, ntp, (ntp >> 14) & 0xFFFFFF)
        if keyframe:
            for outlet in list(self._joining):
                outlet.take_keyframe(self, frame)
        delivered = sum(1 for outlet in list(self._outlets) if self._offer(outlet, frame))
        self.counters.frames_forwarded += delivered
        self.counters.bytes_forwarded += delivered * len(data)
        if not keyframe and (
            self._joining or any(o.waiting_for_keyframe and o.connected for o in self._outlets)
        ):
            # The keyframe asked for went by before this subscriber could take it (or never
            # came): ask again, once the interval allows.
            self.request_keyframe()

    def _measure(self, size: int, now: float) -> None:
        if self._window_start is None:
            self._window_start = now
        self._window_bytes += size
        elapsed = now - self._window_start
        if elapsed >= BITRATE_WINDOW_S:
            rate = self._window_bytes * 8 / elapsed
            if self.bitrate_bps:
                rate = BITRATE_SMOOTHING * rate + (1 - BITRATE_SMOOTHING) * self.bitrate_bps
            self.bitrate_bps = rate
            self._window_start, self._window_bytes = now, 0

    @staticmethod
    def _offer(outlet: Outlet, frame: PackedFrame) -> bool:
        try:
            return outlet.offer(frame)
        except Exception:
            # One broken subscriber must not starve the others.
            log.exception("a subscriber could not be sent a frame")
            return False

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
        now = self.clock()
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
        """Let every subscriber go and drop pending requests."""
        self._requester = None
        for outlet in list(self._outlets):
            outlet.stop()
        for outlet in list(self._joining):
            outlet.switch_to(outlet.source)  # it stays where it is
        for task in list(self._pending):
            task.cancel()
