"""Which NACKed packets a subscriber is sent again: a pure rule, no I/O.

aiortc's receiver answers every new gap with a NACK naming every packet still missing in the
last 128, and aiortc's sender resends each one named, every time. On a link that loses packets
because it is full, that multiplies the traffic exactly when there is no room for it: a venue
under a 400 kbit/s cap was offered several times its picture's rate in resends and decoded
nothing. So a packet is resent at most `tries` times, never twice within `gap_s` (its first
resend may still be on its way), and resends are paid from a budget earned by the media sent:
each packet sent earns `share` of a resend, up to `burst` saved."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

FORGET_S = 3.0  # a packet not named for this long is forgotten (sequence numbers wrap)


@dataclass
class ResendBudget:
    """One subscriber's video resends."""

    gap_s: float = 0.05
    tries: int = 5
    share: float = 1.0
    burst: float = 64.0
    tokens: float = 64.0
    sent_seen: int | None = None  # the media packet count at the last call
    refused: int = 0  # packets named but not resent, in all
    # seq → (last resent, times resent, last named)
    _resent: dict[int, tuple[float, int, float]] = field(default_factory=dict)

    def choose(self, lost: Iterable[int], now: float, sent_packets: int) -> list[int]:
        """The packets of this NACK to resend, given the sender's media packet count so far."""
        self._earn(sent_packets)
        self._forget(now)
        chosen: list[int] = []
        for sequence in dict.fromkeys(lost):
            last, count, _ = self._resent.get(sequence, (None, 0, now))
            refuse = count >= self.tries or (last is not None and now - last < self.gap_s)
            if refuse or self.tokens < 1.0:
                self.refused += 1
                if last is not None:
                    self._resent[sequence] = (last, count, now)
                continue
            self.tokens -= 1.0
            self._resent[sequence] = (now, count + 1, now)
            chosen.append(sequence)
        return chosen

    def _earn(self, sent_packets: int) -> None:
        if self.sent_seen is not None and sent_packets > self.sent_seen:
            earned = self.share * (sent_packets - self.sent_seen)
            self.tokens = min(self.burst, self.tokens + earned)
        self.sent_seen = sent_packets

    def _forget(self, now: float) -> None:
        stale = [seq for seq, (_, _, named) in self._resent.items() if now - named > FORGET_S]
        for sequence in stale:
            del self._resent[sequence]
