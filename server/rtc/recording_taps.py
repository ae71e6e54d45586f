"""How a broadcast is recorded, whichever engine carries it: a recorder on the video and audio
sources' taps (the encoded frames, never decoded), its file named after the session and the
moment it went on air, its state for the wall, and its facts once finished."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path

from passthrough.fanout import Source
from passthrough.recorder import Recorder, RecordingSummary
from server.domain.recordings import RecordedFacts


def record_sources(
    sources: Mapping[str, Source], path: Path, on_stop: Callable[[str], None]
) -> Recorder:
    """A recorder into `path` fed by the "video" and "audio" sources (keyframes asked of the
    video source)."""
    video, audio = sources["video"], sources["audio"]
    recorder = Recorder(path, video.request_keyframe, on_stop=on_stop)
    video.taps.append(partial(recorder.take, "video"))
    audio.taps.append(partial(recorder.take, "audio"))
    return recorder


def recording_state(recorder: Recorder | None) -> tuple[str, str | None]:
    """ "off" (not recorded), "on", or "stopped", with why it stopped."""
    if recorder is None:
        return "off", None
    return ("stopped" if recorder.problem else "on"), recorder.problem


def recorded_facts(summary: RecordingSummary) -> RecordedFacts:
    return RecordedFacts(
        round(summary.duration_s * 1000),
        summary.bytes,
        [(gap.start_s, gap.end_s) for gap in summary.gaps],
        summary.problem,
    )


def recording_name(public_id: str, since: datetime) -> str:
    """A recording's file name: the session and the moment its broadcast went on air (UTC)."""
    return f"{public_id}-{since:%Y%m%dT%H%M%SZ}.webm"
