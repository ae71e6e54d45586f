"""Recording without re-encoding (issue 15, item 1), fed real VP8 and Opus frames (encoded here
by libvpx and libopus) as a source passes them on: one WebM whose length is the broadcast's, a
publisher's time away kept as a listed gap with the picture resuming at a keyframe, every video
frame decoding, and a full disk stopping the recording with a reason, never the caller."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from passthrough.fanout import RelayCounters, Source
from passthrough.recorder import Recorder
from tests.support.media_frames import FPS, Clock, feed, opus_frames, vp8_frames


def probe(path: Path) -> tuple[float, int, list[int]]:
    """Duration (s), video frames decoded, and the pts (ms) of its keyframes."""
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
        decoded = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        keys = [
            round(float(packet.pts * packet.time_base) * 1000)
            for packet in container.demux(video=0)
            if packet.is_keyframe and packet.pts is not None
        ]
    return duration, decoded, keys


def test_a_broadcast_with_a_publisher_away_is_one_file_with_its_gap(tmp_path: Path) -> None:
    clock = Clock()
    asked: list[int] = []
    recorder = Recorder(tmp_path / "r.webm", lambda: asked.append(1), clock)
    video, audio = iter(vp8_frames(600)), iter(opus_frames(1200))
    feed(recorder, clock, 8.0, 0.0, video, audio)
    # The publisher is away for 4 s; the one that returns sends delta frames before its keyframe.
    for _ in range(5):
        next(video)
    feed(recorder, clock, 8.0, 12.0, video, audio)
    summary = recorder.close()
    assert summary.problem is None and summary.bytes > 10_000
    assert summary.duration_s == pytest.approx(20.0, abs=0.1)
    assert len(summary.gaps) == 1
    gap = summary.gaps[0]
    assert gap.start_s == pytest.approx(8.0, abs=0.1)
    assert 12.0 <= gap.end_s <= 13.1  # the picture resumes at the returning one's keyframe
    assert asked  # a keyframe was asked for while the picture waited for one
    duration, decoded, keys = probe(summary.path)
    assert duration == pytest.approx(20.0, abs=0.2)
    assert decoded >= 15 * FPS  # every frame written decodes
    assert keys[0] == 0
    assert round(gap.end_s * 1000) in keys
    assert recorder.close() == summary  # closing twice changes nothing


def test_video_starts_at_a_keyframe_and_audio_waits_for_it(tmp_path: Path) -> None:
    clock = Clock()
    asked: list[int] = []
    recorder = Recorder(tmp_path / "late.webm", lambda: asked.append(1), clock)
    frames = vp8_frames(90, gop=60)
    clock.now = 100.0
    recorder.take("video", "VP8", frames[1], 0, False)  # joined mid-GOP: nothing to start from
    recorder.take("audio", "opus", opus_frames(1)[0], 0, True)
    assert asked and not (tmp_path / "late.webm").exists()
    clock.now = 100.5
    recorder.take("video", "VP8", frames[0], 45_000, True)
    summary = recorder.close()
    assert summary.problem is None and summary.path.exists()
    assert summary.gaps == []


def test_a_source_passes_every_frame_to_its_recorder(tmp_path: Path) -> None:
    """The tap sits on the relay's Source: what reaches venues reaches the file, pts rebased."""
    clock = Clock()
    source = Source("video", RelayCounters(), clock=clock)
    recorder = Recorder(tmp_path / "s.webm", clock=clock)
    source.taps.append(lambda codec, data, pts, key: recorder.take("video", codec, data, pts, key))
    for index, data in enumerate(vp8_frames(60)):
        clock.now = 100.0 + index / FPS
        source.push("VP8", data, 1_000_000 + index * 3000)  # a publisher's own random base
    summary = recorder.close()
    assert summary.duration_s == pytest.approx(59 / FPS, abs=0.05)
    assert probe(summary.path)[1] == 60


def test_a_full_disk_stops_the_recording_with_a_reason_and_never_raises(small_disk: Path) -> None:
    clock = Clock()
    recorder = Recorder(small_disk / "full.webm", clock=clock)
    video, audio = iter(vp8_frames(130, size=(640, 480), noise=True)), iter(opus_frames(220))
    feed(recorder, clock, 4.0, 0.0, video, audio)  # noise: far more than 256 KiB of picture
    summary = recorder.close()
    assert summary.problem == "disk_full"
    assert summary.duration_s < 4.0
