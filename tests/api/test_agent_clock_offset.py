"""`clock_offset_ms` on agent batches: the agent's own round-trip measure of its clock replaces
`received_at − sent_at`, so a batch that spent long in transit is not shifted; without it the old
rule stands (older agents); a bad value refuses the batch whole and stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.db.models import CheckIn, StreamSample
from server.db.session import read_session
from tests.support.api_site import S, Site, iso, make_site, now
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World

AT = S + timedelta(minutes=5)
CHECKINS = "/api/v1/agent/checkins"
STATS = "/api/v1/agent/stream-stats"
DAY_MS = 86_400_000
PROBLEM = {"clock_offset_ms": "must be a whole number of milliseconds within a day"}


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    """The place these tests work in."""
    return await make_site(client, db, world)


def seconds_ago(seconds: float) -> str:
    """A sent_at of a batch that spent this long in transit."""
    return iso(datetime.now(UTC) - timedelta(seconds=seconds))


async def stored_checkin(site: Site) -> tuple[datetime, datetime]:
    """(at_raw, at) of the one stored check-in."""
    async with read_session(site.db) as session:
        row = (await session.execute(select(CheckIn))).scalar_one()
    return row.at_raw, row.at


async def stored_sample_times(site: Site) -> list[datetime]:
    async with read_session(site.db) as session:
        return list(await session.scalars(select(StreamSample.at).order_by(StreamSample.at)))


async def post_checkin(site: Site, at: datetime, **batch: Any) -> None:
    results = await site.results([site.event(at=iso(at))], **batch)
    assert results[0]["status"] == "accepted", results


async def test_a_measured_offset_corrects_the_time_whatever_the_transit(site: Site) -> None:
    """The agent's clock is an hour behind ours; the batch took 5 s to arrive: the correction
    is the hour it measured, not the hour and 5 s that received − sent would say."""
    hour = timedelta(hours=1)
    await post_checkin(site, AT - hour, sent_at=seconds_ago(5 + 3600), clock_offset_ms=3_600_000)
    assert await stored_checkin(site) == (AT - hour, AT)


@pytest.mark.parametrize("offset_ms", [0, 1500, -1999, 2000, -2000])
async def test_a_small_measured_offset_leaves_the_time_alone_on_a_slow_link(
    site: Site, offset_ms: int
) -> None:
    """Clocks within 2 s agree; a batch 5 s in transit is not shifted by its delay."""
    await post_checkin(site, AT, sent_at=seconds_ago(5), clock_offset_ms=offset_ms)
    assert await stored_checkin(site) == (AT, AT)


@pytest.mark.parametrize(
    ("offset_ms", "shift"),
    [
        (2001, timedelta(seconds=2)),  # truncated to the whole second, as every stored time
        (-2500, -timedelta(seconds=3)),
        (DAY_MS, timedelta(days=1)),
        (-DAY_MS, -timedelta(days=1)),
    ],
)
async def test_past_the_tolerance_the_measured_offset_is_applied(
    site: Site, offset_ms: int, shift: timedelta
) -> None:
    # the agent's time of the event, such that it lands on AT once corrected
    at = AT - timedelta(milliseconds=offset_ms)
    await post_checkin(site, at, sent_at=now(), clock_offset_ms=offset_ms)
    at_raw, corrected = await stored_checkin(site)
    assert at_raw == at.replace(microsecond=0)
    assert corrected == (at_raw + timedelta(milliseconds=offset_ms)).replace(microsecond=0)
    assert corrected - at_raw in (shift, shift + timedelta(seconds=1))


async def test_without_a_measured_offset_the_old_rule_stands(site: Site) -> None:
    """An older agent: received − sent beyond 2 s is taken for a wrong clock."""
    await post_checkin(site, AT, sent_at=seconds_ago(5))
    at_raw, corrected = await stored_checkin(site)
    assert at_raw == AT
    assert AT + timedelta(seconds=5) <= corrected <= AT + timedelta(seconds=7)


async def test_without_a_measured_offset_a_short_transit_is_ignored(site: Site) -> None:
    await post_checkin(site, AT, sent_at=seconds_ago(1))
    assert await stored_checkin(site) == (AT, AT)


async def test_stream_samples_use_the_measured_offset_too(site: Site) -> None:
    samples = [{"at": iso(AT + timedelta(seconds=i)), "state": "good"} for i in range(3)]
    for offset_ms in (1000, -60_000):  # too small to count; a minute slow
        status, body = await site.call(
            "POST",
            STATS,
            site.agent(),
            json={
                "sent_at": seconds_ago(10),
                "session_id": site.session_id,
                "samples": samples,
                "clock_offset_ms": offset_ms,
            },
        )
        assert (status, body) == (200, {"accepted": 3})
    expected = [AT + timedelta(seconds=s) for s in (-60, -59, -58, 0, 1, 2)]
    assert await stored_sample_times(site) == expected


async def test_stream_samples_without_an_offset_keep_the_old_rule(site: Site) -> None:
    samples = [{"at": iso(AT), "state": "good"}]
    status, body = await site.call(
        "POST",
        STATS,
        site.agent(),
        json={"sent_at": seconds_ago(30), "session_id": site.session_id, "samples": samples},
    )
    assert (status, body) == (200, {"accepted": 1})
    [stored] = await stored_sample_times(site)
    assert AT + timedelta(seconds=30) <= stored <= AT + timedelta(seconds=32)


BAD_OFFSETS: dict[str, Any] = {
    "null": None,
    "text": "1500",
    "a fraction": 1.5,
    "a float that is whole": 1500.0,
    "true": True,
    "a list": [1500],
    "an object": {"ms": 1500},
    "more than a day ahead": DAY_MS + 1,
    "more than a day behind": -DAY_MS - 1,
    "huge": 10**30,
}


@pytest.mark.parametrize("label", list(BAD_OFFSETS))
async def test_a_bad_offset_refuses_the_batch_and_stores_nothing(site: Site, label: str) -> None:
    offset = BAD_OFFSETS[label]
    batch = {"sent_at": now(), "events": [site.event()], "clock_offset_ms": offset}
    stats = {
        "sent_at": now(),
        "session_id": site.session_id,
        "samples": [{"at": iso(S), "state": "good"}],
        "clock_offset_ms": offset,
    }
    for path, body in ((CHECKINS, batch), (STATS, stats)):
        error = await site.refused("POST", path, 422, site.agent(), fields=PROBLEM, json=body)
        assert error["code"] == "invalid"
