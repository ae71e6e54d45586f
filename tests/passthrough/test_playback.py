"""Playing a recording through the relay (issue 15, item 3): a file recorded from real VP8 and
Opus frames, with a publisher's time away in it, is pushed into the broadcast's sources packet by
packet without decoding, at the recorded pace: every picture arrives, keyframes where they were,
the gap still a gap; the sources hold the file's codecs while it plays and let go after. A
recording made while the live picture sends no keyframes of its own still gets one every few
seconds (the recorder asks), so a venue joining a replay is never kept waiting long."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from passthrough.fanout import RelayCounters, Source
from passthrough.playback import packets, play
from passthrough.recorder import KEYFRAME_EVERY_S, Recorder
from tests.support.media_frames import FPS, Clock, feed, keyframe, opus_frames, vp8_frames


def recorded(path: Path) -> int:
    """A 6 s broadcast with the publisher away from 3 s to 5 s; how many pictures were written."""
    clock = Clock()
    recorder = Recorder(path, clock=clock)
    video, audio = iter(vp8_frames(200)), iter(opus_frames(400))
    feed(recorder, clock, 3.0, 0.0, video, audio)
    feed(recorder, clock, 1.0, 5.0, video, audio)  # its frame at 5.0 s is a keyframe (gop 30)
    summary = recorder.close()
    assert summary.problem is None and len(summary.gaps) == 1
    return sum(1 for played in packets(path) if played.kind == "video")


def sources() -> dict[str, Source]:
    counters = RelayCounters()
    return {"video": Source("video", counters), "audio": Source("audio", counters)}


async def test_a_recording_plays_into_the_sources_as_it_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "r.webm"
    pictures = recorded(path)
    relay = sources()
    seen: list[tuple[str, int, bool]] = []
    heard: list[int] = []
    relay["video"].taps.append(lambda codec, data, pts, key: seen.append((codec, pts, key)))
    relay["audio"].taps.append(lambda codec, data, pts, key: heard.append(pts))
    connected: list[bool] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        connected.append(relay["video"].connected)
        slept.append(seconds)

    clock = Clock()
    played = await play(path, relay, clock=clock, sleep=sleep)
    assert played == pytest.approx(6.0, abs=0.1)
    assert len(seen) == pictures > 100 and seen[0][0] == "VP8" and seen[0][2]
    assert relay["video"].codec is not None and relay["video"].codec.mimeType == "video/VP8"
    assert relay["audio"].codec is not None and relay["audio"].codec.mimeType == "audio/opus"
    assert all(connected) and not relay["video"].connected  # held while playing, then let go
    times = [pts / 90_000 for _, pts, _ in seen]
    jumps = [b - a for a, b in itertools.pairwise(times)]
    assert max(jumps) > 1.5  # the time away is still away
    assert len(heard) > 190  # 4 s of sound at 50 packets a second
    # Paced: with a clock that never moves, it waits for each packet's moment in turn.
    assert slept and max(slept) <= 6.1


async def test_a_replay_keeps_real_time(tmp_path: Path) -> None:
    path = tmp_path / "r.webm"
    recorded(path)
    relay = sources()
    began = time.monotonic()
    task = asyncio.ensure_future(play(path, relay))
    await asyncio.sleep(2.0)
    seen_by_2s = relay["video"].frames_in
    played = await task
    took = time.monotonic() - began
    assert played == pytest.approx(6.0, abs=0.1)
    assert 5.5 < took < 8.0
    assert 40 < seen_by_2s < 75  # about 2 s of 30 fps, not the whole file at once


def test_the_recorder_asks_for_keyframes_the_picture_does_not_send(tmp_path: Path) -> None:
    clock = Clock()
    asked: list[float] = []
    recorder = Recorder(tmp_path / "k.webm", lambda: asked.append(clock.now), clock)
    frames = vp8_frames(300, gop=1000)  # one keyframe, then deltas only
    assert keyframe(frames[0]) and not any(keyframe(data) for data in frames[1:])
    for index, data in enumerate(frames):
        clock.now = 100.0 + index / FPS
        recorder.take("video", "VP8", data, round(index / FPS * 90_000), keyframe(data))
    recorder.close()
    assert asked and min(asked) - 100.0 == pytest.approx(KEYFRAME_EVERY_S, abs=0.1)
