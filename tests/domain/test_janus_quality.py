"""Which of the publisher's streams a venue receives from Janus, and its layer from the reports
of its subscriber handle, by the built-in relay's rule (server.rtc.janus_quality)."""

from __future__ import annotations

from passthrough.quality import HIGH, LOW, QualityRule
from server.domain.janus_events import MediaReport
from server.rtc.janus_quality import VenueQuality, subscribed_mids, two_layers

STREAMS = [
    {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
    {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"},
    {"type": "video", "mindex": 2, "mid": "2", "codec": "vp8"},
]


def test_a_venue_receives_the_sound_and_one_picture() -> None:
    assert two_layers(STREAMS)
    assert subscribed_mids(STREAMS, HIGH) == ["0", "1"]
    assert subscribed_mids(STREAMS, LOW) == ["0", "2"]
    one = STREAMS[:2]
    assert not two_layers(one)
    assert subscribed_mids(one, LOW) == ["0", "1"]


def test_losses_reported_by_the_venue_move_it_down_and_a_clean_spell_up() -> None:
    quality = VenueQuality(QualityRule(clean_s=10.0))

    def report(handle: int, sent: int, lost: int, at: float) -> bool:
        return quality.report("b1", MediaReport("b1", handle, sent, lost), at)

    assert not report(7, 100, 0, 0.0)  # the first report only sets the counters
    assert not report(7, 200, 30, 1.0)  # 30 of 130 lost: one lossy report
    assert report(7, 300, 60, 2.0)  # two in a row: down
    assert quality.layer("b1") == LOW
    assert not report(7, 300, 60, 3.0)  # nothing sent meanwhile: no verdict
    # A new handle (the venue subscribed again) starts its own counters; clean reports go up.
    assert not report(8, 50, 0, 4.0)
    changed = [report(8, 50 + 100 * n, 0, 4.0 + n) for n in range(1, 13)]
    assert changed.count(True) == 1 and quality.layer("b1") == HIGH
    assert quality.layer("elsewhere") == HIGH
