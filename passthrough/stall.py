"""A guard for aiortc video receivers: a packet lost for good (its retransmission lost too)
blocks aiortc's jitter buffer until 512 packets pile up, many seconds of frozen picture. When no
frame has left the buffer for a while although packets wait behind a hole, skip the hole and ask
the publisher for a keyframe (the relay forwards a subscriber's PLI to it). When a keyframe
already waits behind the hole (the one asked for, or the first of a new video layer), skip
straight to it, sooner: nothing before it can be decoded anyway. Meanwhile every look asks
again for the packets still missing (aiortc asks once, when it sees the gap)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from passthrough.hooks import (
    jitter_blocked,
    jitter_buffer,
    jitter_missing,
    jitter_origin,
    keyframe_behind_hole,
    media_ssrc,
    payload_codecs,
    send_nack,
    send_pli,
    skip_jitter_hole,
    vp8_keyframe_start,
)

log = logging.getLogger(__name__)

CHECK_S = 0.25  # how often the buffer is looked at
STALL_S = 0.7  # no frame out of the buffer this long, packets waiting: stuck on a hole
KEY_STALL_S = 0.5  # the same, with a keyframe waiting behind the hole (a resend may still come)
GAP_S = 1.0  # at most one skip and PLI this often


@dataclass
class StallWatch:
    """When to act on one receiver's jitter buffer (pure: fed the buffer's state and the time)."""

    stall_s: float = STALL_S
    key_stall_s: float = KEY_STALL_S
    gap_s: float = GAP_S
    _origin: int | None = None
    _moved_at: float | None = None
    _acted_at: float | None = None

    def stuck(self, now: float, origin: int | None, blocked: bool, key_waits: bool = False) -> bool:
        """True when frames stopped leaving (the origin has not moved for stall_s) while packets
        wait behind a hole, and the last action is gap_s old; the caller then acts. With a
        keyframe waiting behind the hole, key_stall_s is enough and there is no gap to keep."""
        if origin != self._origin or self._moved_at is None:
            self._origin, self._moved_at = origin, now
            return False
        if key_waits and now - self._moved_at >= self.key_stall_s:
            self._acted_at = now
            return True
        if not blocked or now - self._moved_at < self.stall_s:
            return False
        if self._acted_at is not None and now - self._acted_at < self.gap_s:
            return False
        self._acted_at = now
        return True


@dataclass
class StallGuard:
    """Watches video receivers and unblocks them; `skips` counts the holes skipped."""

    receivers: Sequence[RTCRtpReceiver]
    check_s: float = CHECK_S
    skips: int = 0
    _watches: list[StallWatch] = field(default_factory=list)

    def __post_init__(self) -> None:
        for receiver in self.receivers:
            jitter_buffer(receiver)  # fails loudly now, not in the task, if aiortc changed
        self._watches = [StallWatch() for _ in self.receivers]

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await asyncio.sleep(self.check_s)
            for receiver, watch in zip(self.receivers, self._watches, strict=True):
                await self._check(receiver, watch, time.monotonic())

    async def _check(self, receiver: RTCRtpReceiver, watch: StallWatch, now: float) -> None:
        buffer = jitter_buffer(receiver)
        ssrc = jitter_blocked(buffer)
        codecs = payload_codecs(receiver)

        def starts_key(packet: RtpPacket) -> bool:
            return codecs.get(packet.payload_type) == "VP8" and vp8_keyframe_start(packet)

        if ssrc is not None and (missing := jitter_missing(buffer)):
            await send_nack(receiver, ssrc, missing)  # aiortc asks only once per gap
        key_at = keyframe_behind_hole(buffer, starts_key) if ssrc is not None else 0
        if not watch.stuck(now, jitter_origin(buffer), ssrc is not None, key_at > 0):
            return
        if key_at:
            buffer.remove(key_at)
            self.skips += 1
            log.info("video stuck on a lost packet: skipped %d packets to a keyframe", key_at)
            return
        dropped = skip_jitter_hole(buffer)
        if dropped:
            self.skips += 1
        if ssrc is None:
            ssrc = media_ssrc(receiver)
        log.info("video stuck on a lost packet: %d packets skipped, keyframe asked", dropped)
        if ssrc is not None:
            await send_pli(receiver, ssrc)


def guard_video(receivers: Sequence[RTCRtpReceiver]) -> tuple[StallGuard, asyncio.Task[None]]:
    """Start guarding these video receivers; cancel the task (and await it) to stop."""
    guard = StallGuard(receivers)
    return guard, asyncio.create_task(guard.run())
