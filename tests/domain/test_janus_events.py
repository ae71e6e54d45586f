"""Janus's event handler reports read into figures for the metrics (the Janus process itself is
in tests/janus/test_janus_events.py)."""

from __future__ import annotations

import pytest

from server.domain.janus_events import read_events


def test_the_event_samples_of_the_notes_are_read() -> None:
    """The shapes deploy/janus/NOTES.md recorded from a real Janus, read into figures."""
    figures = read_events(
        [
            {
                "emitter": "janus-b",
                "type": 32,
                "opaque_id": "hetang-venue-b7",
                "event": {"media": "video", "bytes-sent-lastsec": 125000, "lost-by-remote": 3},
            },
            {
                "emitter": "janus-b",
                "type": 32,
                "opaque_id": "hetang-operator-s1",
                "event": {"media": "video", "bytes-received-lastsec": 5761},
            },
            {"emitter": "janus-b", "type": 16, "event": {"connection": "hangup"}},
            {"emitter": "janus-b", "type": 64, "event": {"plugin": "janus.plugin.videoroom"}},
            "not an event",
            {"type": "media"},
        ]
    )
    assert figures.venue_kbps == {"b7": 1000.0} and figures.venue_lost == {"b7": 3}
    assert figures.publisher_kbps == {"s1": pytest.approx(46.088)}
    assert figures.hangups == {"janus-b": 1}
    assert figures.events == {
        ("janus-b", "media"): 2,
        ("janus-b", "webrtc"): 1,
        ("janus-b", "plugin"): 1,
    }
    with pytest.raises(ValueError):
        read_events("events")
