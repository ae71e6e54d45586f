"""The delivery rules of webhooks: what is retried and after how long, Retry-After, which
addresses are public, and a venue's stream going down and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.webhooks import (
    RETRY_AFTER_CAP_S,
    RETRY_CAP_S,
    is_public_address,
    outcome,
    parse_retry_after,
    should_disable,
    stream_events,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (None, "pending"),
        (500, "pending"),
        (503, "pending"),
        (408, "pending"),
        (429, "pending"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (410, "failed"),
        (301, "failed"),
    ],
)
def test_what_is_retried(status: int | None, state: str) -> None:
    assert outcome(status, 1, None, 10.0, 1.0).state == state


@given(
    attempts=st.integers(1, 80),
    base=st.floats(0.01, 100),
    jitter=st.floats(0.5, 1.0),
    retry_after=st.none() | st.floats(0, 10**7),
)
def test_backoff_doubles_up_to_the_cap_and_honours_retry_after(
    attempts: int, base: float, jitter: float, retry_after: float | None
) -> None:
    wait = outcome(503, attempts, retry_after, base, jitter).wait_s
    backoff = min(RETRY_CAP_S, base * 2 ** (attempts - 1)) * jitter
    expected = backoff if retry_after is None else max(backoff, min(retry_after, RETRY_AFTER_CAP_S))
    assert wait == pytest.approx(expected)


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120
    later = "Sat, 05 Dec 2026 12:01:30 GMT"
    assert parse_retry_after(later, NOW) == 90
    assert parse_retry_after("Sat, 05 Dec 2026 11:00:00 GMT", NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104  (an address refused, not bound)
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "100.64.0.1",
        "192.0.2.1",
        "not an address",
    ],
)
def test_private_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def test_an_endpoint_is_disabled_after_the_limit_of_failures() -> None:
    assert not should_disable(None, NOW, 60)
    assert not should_disable(NOW - timedelta(seconds=59), NOW, 60)
    assert should_disable(NOW - timedelta(seconds=60), NOW, 60)


def test_a_stream_going_down_and_back() -> None:
    at = [NOW + timedelta(seconds=5 * i) for i in range(6)]
    states = ["good", "degraded", "down", "down", "good", "down"]
    assert stream_events(None, list(zip(at, states, strict=True))) == [
        (at[2], "venue.down"),
        (at[4], "venue.recovered"),
        (at[5], "venue.down"),
    ]
    assert stream_events("down", [(at[0], "down"), (at[1], "good")]) == [(at[1], "venue.recovered")]
    assert stream_events("good", []) == []
