"""Recording a broadcast without re-encoding: the encoded VP8 and Opus frames the relay already
has are muxed into one WebM file as they pass (PyAV's add_mux_stream for VP8; the Opus stream
gets its OpusHead from an encoder context that never encodes).

The sources' timestamps already run on across publishers (a republish continues the clock by the
time it was away, fanout.Source), so a dropped and returning publisher continues the same file:
the time away stays a gap in the timeline, is listed, and video resumes at a keyframe. Any error
of the disk (full, gone) stops the recording and says why; it never reaches the broadcast."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from passthrough.frames import AUDIO_CLOCK, VIDEO_CLOCK, vp8_picture_size

if TYPE_CHECKING:
    from av.container import OutputContainer

log = logging.getLogger(__name__)

GAP_S = 1.0  # a jump in the video's timeline longer than this is a gap (the publisher was away)
AUDIO_ONLY_AFTER_S = 5.0  # no video keyframe by then: the broadcast is recorded as sound only
# The live publisher is asked for a keyframe when the last is older than this: a player seeks to
# one, and a make-up session's venues start from one (passthrough/playback.py).
KEYFRAME_EVERY_S = 5.0


@dataclass(frozen=True)
class Gap:
    """A stretch of the recording's timeline with no picture (seconds from its start)."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class RecordingSummary:
    """What a finished recording holds."""

    path: Path
    duration_s: float
    bytes: int
    gaps: list[Gap]
    problem: str | None  # None, "disk_full" or "write_failed"


@dataclass
class _Track:
    rate: int
    stream: Any = None
    base: int | None = None  # the source's pts at our 0
    last: int | None = None  # the last pts written, on our timeline
    last_keyframe: int | None = None  # the pts of the last keyframe written
    waiting_keyframe: bool = True


@dataclass
class Recorder:
    """One broadcast's file; `take` is given every frame of its video and audio sources."""

    path: Path
    request_keyframe: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    on_stop: Callable[[str], None] = lambda problem: None  # told why, once, when it stops early
    problem: str | None = None
    gaps: list[Gap] = field(default_factory=list)
    _container: OutputContainer | None = None
    _started: float | None = None
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _closed: bool = False

    def take(self, kind: str, codec_name: str, data: bytes, pts: int, keyframe: bool) -> None:
        """One encoded frame as a source passes it on (its continuous pts, in its clock)."""
        if self._closed or self.problem is not None:
            return
        try:
            self._take(kind, codec_name.upper(), data, pts, keyframe)
        except (av.FFmpegError, OSError) as error:
            self._fail(error)

    def await_keyframe(self) -> None:
        """A new publisher: its picture is written from its first keyframe on (asked for now)."""
        track = self._tracks.get("video")
        if track is not None and track.stream is not None:
            track.waiting_keyframe = True
        self.request_keyframe()

    def _take(self, kind: str, codec_name: str, data: bytes, pts: int, keyframe: bool) -> None:
        now = self.clock()
        if self._started is None:
            self._started = now
        if self._container is None:
            if kind == "video" and codec_name == "VP8" and keyframe:
                self._open(vp8_picture_size(data), with_video=True)
            elif now - self._started >= AUDIO_ONLY_AFTER_S and kind == "audio":
                self._open(None, with_video=False)
            else:
                if kind == "video":
                    self.request_keyframe()
                return
        track = self._tracks.get(kind)
        if track is None or track.stream is None:
            return
        if track.base is None:
            track.base = pts - round((now - self._started) * track.rate)
        at = pts - track.base
        if track.last is not None and at <= track.last:
            return  # never backwards within a stream
        if kind == "video":
            if track.last is not None and at - track.last > GAP_S * track.rate:
                track.waiting_keyframe = True
            if track.waiting_keyframe and not keyframe:
                self.request_keyframe()
                return
            if track.waiting_keyframe and track.last is not None:
                self.gaps.append(Gap(track.last / track.rate, at / track.rate))
            track.waiting_keyframe = False
            if keyframe:
                track.last_keyframe = at
            elif (
                track.last_keyframe is not None
                and at - track.last_keyframe > KEYFRAME_EVERY_S * track.rate
            ):
                self.request_keyframe()  # the source spaces its requests out
        packet = av.Packet(data)
        packet.stream = track.stream
        packet.pts = packet.dts = at
        packet.time_base = Fraction(1, track.rate)
        packet.is_keyframe = keyframe
        assert self._container is not None
        self._container.mux(packet)
        track.last = at

    def _open(self, picture: tuple[int, int] | None, *, with_video: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format="webm")
        self._container = container
        if with_video:
            width, height = picture or (0, 0)
            video = container.add_mux_stream("vp8", width=width, height=height)
            video.time_base = Fraction(1, VIDEO_CLOCK)
            self._tracks["video"] = _Track(VIDEO_CLOCK, video)
        # Muxed only: the encoder context is there for the OpusHead the WebM header needs.
        audio = container.add_stream("libopus", rate=AUDIO_CLOCK, layout="stereo")
        audio.time_base = Fraction(1, AUDIO_CLOCK)
        self._tracks["audio"] = _Track(AUDIO_CLOCK, audio, waiting_keyframe=False)

    def _fail(self, error: Exception) -> None:
        full = isinstance(error, OSError) and error.errno == errno.ENOSPC
        self.problem = "disk_full" if full else "write_failed"
        log.error("recording %s stopped: %s", self.path, error)
        self._close_container()
        self.on_stop(self.problem)

    def _close_container(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.close()
        except (av.FFmpegError, OSError) as error:
            if self.problem is None:
                self._fail(error)

    @property
    def duration_s(self) -> float:
        """The recording's length so far."""
        return max(
            (track.last / track.rate for track in self._tracks.values() if track.last is not None),
            default=0.0,
        )

    def close(self) -> RecordingSummary:
        """Finish the file (idempotent) and say what it holds."""
        if not self._closed:
            self._closed = True
            self._close_container()
        size = self.path.stat().st_size if self.path.exists() else 0
        return RecordingSummary(self.path, self.duration_s, size, list(self.gaps), self.problem)
