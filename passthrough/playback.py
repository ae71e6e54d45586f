"""Playing a recording through the relay, still without re-encoding (a make-up session, 补学):
the WebM's VP8 and Opus packets are read in order and pushed into the broadcast's sources at the
pace they were recorded, exactly as a publisher's frames would be. The venues' agents receive
them as a live broadcast; a gap in the recording is a gap on the air, as it was live.

A file cannot make a keyframe when asked: the recorder asks the live publisher for one every
few seconds (recorder.KEYFRAME_EVERY_S), so a venue joining the replay waits at most that long."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import av
from aiortc import RTCRtpCodecCapability

from passthrough.fanout import Source
from passthrough.frames import AUDIO_CLOCK, VIDEO_CLOCK, is_keyframe

log = logging.getLogger(__name__)

CODECS = MappingProxyType(
    {
        "vp8": ("video", RTCRtpCodecCapability(mimeType="video/VP8", clockRate=VIDEO_CLOCK)),
        "opus": (
            "audio",
            RTCRtpCodecCapability(mimeType="audio/opus", clockRate=AUDIO_CLOCK, channels=2),
        ),
    }
)
CODEC_NAMES = MappingProxyType({"vp8": "VP8", "opus": "opus"})
READ_AHEAD_S = 0.05  # a packet is pushed once its time is this close


@dataclass(frozen=True)
class Played:
    """One packet of the file: which source, its codec name, its data and its time (s)."""

    kind: str
    codec_name: str
    data: bytes
    at_s: float
    keyframe: bool


def packets(path: Path) -> Iterator[Played]:
    """The file's VP8 and Opus packets in time order (the container interleaves them)."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.codec_context.name in CODECS]
        for packet in container.demux(*streams):
            if packet.size == 0 or packet.pts is None or packet.time_base is None:
                continue
            name = packet.stream.codec_context.name
            kind = CODECS[name][0]
            data = bytes(packet)
            codec_name = CODEC_NAMES[name]
            yield Played(
                kind,
                codec_name,
                data,
                float(packet.pts * Fraction(packet.time_base)),
                is_keyframe(codec_name, data),
            )


async def _no_keyframe() -> None:
    """A file cannot make a keyframe on request; its next one comes in its time."""


async def play(
    path: Path,
    sources: Mapping[str, Source],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> float:
    """Push the file's packets into the sources ("video", "audio") at the recorded pace, until
    it ends (or the task is cancelled); returns the seconds of media played."""
    present = {CODECS[name][0]: CODECS[name][1] for name in _codec_names(path)}
    for kind, codec in present.items():
        sources[kind].connect(codec, _no_keyframe)
    started = clock()
    last = 0.0
    try:
        for played in packets(path):
            wait = started + played.at_s - clock()
            if wait > READ_AHEAD_S:
                await sleep(wait)
            rate = VIDEO_CLOCK if played.kind == "video" else AUDIO_CLOCK
            sources[played.kind].push(played.codec_name, played.data, round(played.at_s * rate))
            last = played.at_s
    finally:
        for kind in present:
            sources[kind].disconnect()
    return last


def _codec_names(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [s.codec_context.name for s in container.streams if s.codec_context.name in CODECS]
