"""What a finished broadcast recording holds, in plain values the relay hands to the services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordedFacts:
    """A recording's length, size and gaps (seconds from its start with no picture), and why it
    stopped early, if it did ("disk_full", "write_failed")."""

    duration_ms: int
    bytes: int
    gaps: list[tuple[float, float]]
    problem: str | None
