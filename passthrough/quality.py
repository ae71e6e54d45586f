"""Which video layer a subscriber should get, from its own feedback: a pure rule, no I/O.

Down quickly: loss above `loss_down` in `loss_reports_down` receiver reports in a row (in one
report during an up-switch's probation: the probe is what hurts), or a REMB below what the high
layer needs (that is not rising) in `remb_reports_down` REMBs in a row.
Up cautiously: on the low layer, only after `clean_s` of low loss with no REMB fall, and while the
receiver's estimate is not pinned under what it receives (aiortc's estimator never says more than
1.5 × what arrives + 10 kbit/s, so on the low layer a REMB above the high layer's rate cannot
happen: "not congested" is the most it can tell). An up-switch followed by a down-switch within
`probation_s` failed: the next wait doubles, up to `clean_max_s`. The state outlives one
connection: a venue that subscribes again in the same broadcast keeps its layer and its failures
(`rejoin`), and losing the picture during a probation counts as the probe failing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Layer = Literal["high", "low"]
HIGH: Layer = "high"
LOW: Layer = "low"


@dataclass(frozen=True)
class QualityRule:
    """The thresholds of the rule (defaults for real links; tests shorten the waits)."""

    loss_down: float = 0.10  # fraction lost in one receiver report
    loss_reports_down: int = 2
    loss_clean: float = 0.02  # at most this lost counts as a clean report
    remb_need: float = 0.75  # a REMB under this share of the high layer's rate is too little
    remb_reports_down: int = 3
    remb_headroom: float = 1.2  # to go up, REMB ≥ this × the low layer's rate (not congested)
    remb_fall: float = 0.95  # a REMB under this share of the one before it is a fall
    clean_s: float = 25.0
    clean_max_s: float = 240.0
    probation_s: float = 20.0


@dataclass(frozen=True)
class Switch:
    """One decision: when, and to which layer."""

    at: float
    layer: Layer
    reason: str


@dataclass
class QualityState:
    """One subscriber's state under the rule; `layer` is what the rule wants it to get."""

    rule: QualityRule = field(default_factory=QualityRule)
    layer: Layer = HIGH
    lossy_reports: int = 0
    low_rembs: int = 0
    last_remb: int | None = None
    clean_since: float | None = None  # since when nothing argued against going up
    up_at: float | None = None  # when the last up-switch was decided
    failures: int = 0  # failed up-switches in a row
    history: list[Switch] = field(default_factory=list)

    @property
    def wait_s(self) -> float:
        """How long the low layer has to stay clean before going up."""
        return float(min(self.rule.clean_s * 2**self.failures, self.rule.clean_max_s))

    def on_loss(self, fraction_lost: float, now: float) -> Layer | None:
        """A receiver report for the video we send (fraction lost, 0–1); the new layer if any."""
        rule = self.rule
        if fraction_lost > rule.loss_down:
            self.lossy_reports += 1
        else:
            self.lossy_reports = 0
        if fraction_lost > rule.loss_clean:
            self.clean_since = None
        elif self.clean_since is None:
            self.clean_since = now
        needed = 1 if self._on_probation(now) else rule.loss_reports_down
        if self.layer == HIGH and self.lossy_reports >= needed:
            return self._down(now, f"loss {fraction_lost:.0%}")
        return None

    def on_remb(self, bitrate: int, high_bps: float, now: float) -> Layer | None:
        """A REMB (bit/s) for the video we send, with what the high layer needs now."""
        rule = self.rule
        previous, self.last_remb = self.last_remb, bitrate
        falling = previous is not None and bitrate < rule.remb_fall * previous
        rising = previous is not None and bitrate > previous
        if falling:
            self.clean_since = None
        if bitrate < rule.remb_need * high_bps and not rising:
            self.low_rembs += 1
        else:
            self.low_rembs = 0
        if self.layer == HIGH and high_bps > 0 and self.low_rembs >= rule.remb_reports_down:
            return self._down(now, f"REMB {bitrate // 1000} kbit/s")
        return None

    def check_up(self, low_bps: float, now: float) -> Layer | None:
        """On the low layer: go up if it stayed clean long enough and REMB is not pinned."""
        rule = self.rule
        if self.layer == HIGH:
            if self.up_at is not None and now - self.up_at >= rule.probation_s:
                self.failures, self.up_at = 0, None  # the last up-switch held
            return None
        if self.clean_since is None or now - self.clean_since < self.wait_s:
            return None
        if self.last_remb is not None and self.last_remb < rule.remb_headroom * low_bps:
            return None
        self.layer = HIGH
        self.up_at = now
        self.lossy_reports = self.low_rembs = 0
        self.history.append(Switch(now, HIGH, "clean"))
        return HIGH

    def rejoin(self, now: float) -> None:
        """The venue subscribes again (its connection failed or went silent): what its feedback
        said about the old connection no longer holds; a probe it did not survive failed."""
        if self.layer == HIGH and self._on_probation(now):
            self._down(now, "lost the picture while trying the full one")
        self.lossy_reports = self.low_rembs = 0
        self.last_remb = None
        self.clean_since = None

    def _on_probation(self, now: float) -> bool:
        return self.up_at is not None and now - self.up_at < self.rule.probation_s

    def _down(self, now: float, reason: str) -> Layer:
        if self._on_probation(now):
            self.failures += 1
        self.up_at = None
        self.layer = LOW
        self.lossy_reports = self.low_rembs = 0
        self.clean_since = None
        self.last_remb = None  # the low layer's REMB starts from what it receives
        self.history.append(Switch(now, LOW, reason))
        return LOW
