"""Which picture each venue gets from Janus, by the same rule as the built-in relay
(passthrough.quality): the operator's page sends two video streams, the full and the lighter
one, and a venue subscribes to the sound and one of them. Its feedback is what Janus's event
handler reports of the venue's subscriber handle every stats period: the packets sent to it and
the losses its receiver reports (`lost-by-remote`), i.e. the RTCP receiver reports the built-in
relay reads itself. A change of layer makes the venue subscribe again (told `broadcast_moved`);
Janus 1.1's `switch` request, which would do it in place, is broken there (#3447, fixed in 1.3)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from passthrough.quality import HIGH, LOW, Layer, QualityRule, QualityState
from server.domain.janus_events import MediaReport


def subscribed_mids(streams: list[dict[str, Any]], layer: Layer) -> list[str]:
    """The publisher's streams a venue on this layer receives: every sound stream, and the
    first video stream (full) or the second (lighter; the first when there is no second)."""
    sound = [str(s["mid"]) for s in streams if s.get("type") == "audio"]
    videos = [str(s["mid"]) for s in streams if s.get("type") == "video"]
    if not videos:
        return sound
    return [*sound, videos[1] if layer == LOW and len(videos) > 1 else videos[0]]


def two_layers(streams: list[dict[str, Any]]) -> bool:
    return sum(1 for s in streams if s.get("type") == "video") > 1


@dataclass
class Counters:
    """A subscriber handle's running totals at its last report."""

    sent: int = 0
    lost: int = 0


@dataclass
class VenueQuality:
    """The layers of one broadcast's venues (kept across their subscriptions) and the last
    counters of each subscriber handle."""

    rule: QualityRule = field(default_factory=QualityRule)
    states: dict[str, QualityState] = field(default_factory=dict)
    counters: dict[int, Counters] = field(default_factory=dict)  # handle id → last report

    def layer(self, venue_code: str) -> Layer:
        state = self.states.get(venue_code)
        return HIGH if state is None else state.layer

    def state(self, venue_code: str) -> QualityState:
        return self.states.setdefault(venue_code, QualityState(self.rule))

    def report(self, venue_code: str, report: MediaReport, now: float | None = None) -> bool:
        """One report of the venue's handle; True when its layer changed."""
        at = time.monotonic() if now is None else now
        last = self.counters.get(report.handle_id)
        self.counters[report.handle_id] = Counters(report.packets_sent, report.lost_by_remote)
        if last is None:
            return False
        sent = report.packets_sent - last.sent
        lost = max(0, report.lost_by_remote - last.lost)
        if sent <= 0:
            return False
        state = self.state(venue_code)
        before = state.layer
        state.on_loss(min(1.0, lost / (sent + lost)), at)
        state.check_up(0.0, at)
        return state.layer != before
