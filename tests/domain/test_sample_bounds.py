"""An uploaded stream sample's figures (server/domain/agent_payloads.py): one past what a lesson
can show is clamped to its bound, so the all-or-nothing batch keeps every sample; one that is not
a non-negative finite number still makes the batch malformed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.agent_payloads import (
    SAMPLE_BOUNDS,
    MalformedSamples,
    parse_sample_batch,
)
from venue_agent.health import MAX_BITRATE_KBPS, MAX_FPS, MAX_JITTER_MS

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FIGURES = tuple(SAMPLE_BOUNDS)


def sample(n: int = 0, **changes: object) -> dict[str, Any]:
    return {
        "at": (NOW - timedelta(seconds=5 * n)).isoformat(),
        "state": "good",
        "bitrate_kbps": 900.0,
        "fps": 30,
        "loss_pct": 0.1,
        "jitter_ms": 4.0,
        "freezes": 0,
        "frames_decoded": 150,
        **changes,
    }


def batch(*samples: dict[str, Any]) -> dict[str, object]:
    return {"sent_at": NOW.isoformat(), "session_id": "S1", "samples": list(samples)}


def test_the_server_bounds_are_the_agents() -> None:
    assert SAMPLE_BOUNDS == {
        "bitrate_kbps": MAX_BITRATE_KBPS,
        "fps": MAX_FPS,
        "loss_pct": 100.0,
        "jitter_ms": MAX_JITTER_MS,
    }


def test_one_absurd_figure_loses_no_sample_of_the_batch() -> None:
    # Issue 13's figure, from an agent older than the agent's own bound, among ordinary ones.
    sent = [sample(n) for n in range(5)]
    sent[2] = sample(2, jitter_ms=820_398)
    readings = parse_sample_batch(batch(*sent), NOW).readings
    assert len(readings) == 5
    assert [r.jitter_ms for r in readings] == [4.0, 4.0, MAX_JITTER_MS, 4.0, 4.0]
    assert {(r.fps, r.bitrate_kbps, r.loss_pct) for r in readings} == {(30.0, 900.0, 0.1)}


@pytest.mark.parametrize(
    ("name", "sent", "kept"),
    [
        ("fps", 500, MAX_FPS),
        ("fps", 120, 120.0),
        ("loss_pct", 100.5, 100.0),
        ("bitrate_kbps", 1e308, MAX_BITRATE_KBPS),
        ("bitrate_kbps", 10**400, MAX_BITRATE_KBPS),  # a whole number beyond any float
        ("jitter_ms", 10_000.5, MAX_JITTER_MS),
        ("jitter_ms", 0, 0.0),
    ],
)
def test_a_figure_past_its_bound_is_clamped(name: str, sent: float, kept: float) -> None:
    (reading,) = parse_sample_batch(batch(sample(**{name: sent})), NOW).readings
    assert getattr(reading, name) == kept


@pytest.mark.parametrize(
    "changes",
    [
        {"jitter_ms": -1},
        {"fps": math.nan},
        {"loss_pct": math.inf},
        {"bitrate_kbps": -(10**400)},
        {"fps": "30"},
        {"frames_decoded": 2**31},  # counters are not figures: past 32 bits, malformed
    ],
)
def test_what_is_not_a_figure_still_refuses_the_batch(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedSamples) as refused:
        parse_sample_batch(batch(sample(0), sample(1, **changes), sample(2)), NOW)
    assert refused.value.indexes == (1,)


@given(
    st.sampled_from(FIGURES),
    st.floats(min_value=0, allow_infinity=False, allow_nan=False) | st.integers(min_value=0),
    st.integers(min_value=1, max_value=20),
)
def test_every_non_negative_number_is_kept_within_bounds(
    name: str, value: float, count: int
) -> None:
    sent = [sample(n) for n in range(count)]
    sent[-1] = sample(count - 1, **{name: value})
    readings = parse_sample_batch(batch(*sent), NOW).readings
    assert len(readings) == count
    bound = SAMPLE_BOUNDS[name]
    assert getattr(readings[-1], name) == (bound if value > bound else float(value))
