"""Self check-in by phone (扫码签到) through the real app: a code the agent signs opens the phone
page, the member's number and ID digits check them in with source `self`; expired, forged and
other venues' codes, wrong digits, a second member from one phone and guessing are refused in
Chinese, nothing half-written; a check-in while the stream is down is flagged."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from redis.asyncio import Redis
from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.app import create_app
from server.db.base import Base
from server.db.models import Member, QuarantinedCheckIn, Venue
from server.db.session import make_engine, read_session, write_session
from server.settings import Settings
from tests.support.client import Client
from tests.support.databases import REDIS_ENV
from tests.support.self_checkin import add_members, code_path, scan, self_checkins, send
from tests.support.sessions import between_m_and_b, live_session
from tests.support.stream_stats import post_samples
from tests.support.world import World


async def test_a_phone_checks_one_member_in_and_refusals_say_why(
    client: Client, world: World, db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, tokens = await live_session(client, world)
    await add_members(client, world)
    async with read_session(db) as session:
        stored = await session.scalar(select(Member.id_last4_hash).where(Member.member_no == "P1"))
    assert stored is not None and "1234" not in stored

    # Codes the phone page refuses, each saying why.
    for path, why in (
        (code_path(tokens["B"], "B", session_id, time.time() - 40), "二维码已过期"),
        (code_path(tokens["M"], "B", session_id), "二维码无效"),  # another venue's key
        (code_path(tokens["B"], "B", "nosuch"), "二维码无效"),
        ("/c/B/" + session_id + "/1/short.sig", "二维码无效"),
    ):
        page = await client.get(path)
        assert page.status == 403 and why in await page.text(), path

    scan_pass = await scan(client, code_path(tokens["B"], "B", session_id))
    for number, last4 in (("P1", "9999"), ("NOBODY", "1234")):  # the same answer for both
        status, body = await send(client, scan_pass, number, last4)
        assert status == 403 and body["error"]["message"] == "党员编号或身份证号后四位不正确。"
    assert await self_checkins(db) == []

    status, body = await send(client, scan_pass, "P1", "1234")
    assert status == 201, body
    assert (body["member_no"], body["name"], body["venue"], body["flags"]) == (
        "P1",
        "党员P1",
        "B",
        [],
    )
    status, body = await send(client, scan_pass, "P1", "1234", "out")  # the same member again
    assert status == 201 and body["kind"] == "out"

    # A second member from the same phone: refused, kept for the reviewer, the first flagged.
    status, body = await send(client, scan_pass, "P2", "567x")
    assert status == 409 and "另一名党员" in body["error"]["message"]
    assert await self_checkins(db) == [("P1", "shared_phone"), ("P1", "shared_phone")]
    async with read_session(db) as session:
        kept = (await session.scalars(select(QuarantinedCheckIn))).all()
    assert [(q.reason, q.payload["member_no"]) for q in kept] == [("phone_shared", "P2")]

    # A pass is this phone's: another phone (a fresh cookie) cannot use it.
    client.session.cookie_jar.clear()
    status, body = await send(client, scan_pass, "P2", "567X")
    assert status == 403 and "Cookie" in body["error"]["message"]
    client.session.cookie_jar.update_cookies({"hetang_phone": "another-phone"})
    status, body = await send(client, scan_pass, "P2", "567X")
    assert status == 403 and "页面已过期" in body["error"]["message"]

    # The venue's stream is down: a check-in still counts, flagged for the reviewer.
    now = datetime.now(UTC).isoformat()
    sample = {
        "at": now,
        "state": "down",
        "bitrate_kbps": 0,
        "fps": 0,
        "loss_pct": 0,
        "jitter_ms": 0,
        "freezes": 0,
        "frames_decoded": 0,
    }
    assert await post_samples(client, tokens["B"], session_id, [sample]) == 1
    status, body = await send(
        client, await scan(client, code_path(tokens["B"], "B", session_id)), "P2", "567X"
    )
    assert status == 201 and body["flags"] == ["stream_down"]

    # A venue that takes phones only from its own network refuses one from elsewhere.
    async with write_session(db) as session:
        await session.execute(
            update(Venue).where(Venue.code == "B").values(selfcheckin_networks="10.0.0.0/8")
        )
    page = await client.get(code_path(tokens["B"], "B", session_id))
    assert page.status == 403 and "本会场只允许从指定网络扫码签到" in await page.text()


async def test_guessing_member_numbers_locks_out(
    client: Client, world: World, db: async_sessionmaker[AsyncSession]
) -> None:
    session_id, tokens = await live_session(client, world)
    await add_members(client, world)
    path = code_path(tokens["B"], "B", session_id)
    # One phone guessing: five wrong answers, then it waits, even with a right one.
    scan_pass = await scan(client, path)
    for guess in range(5):
        status, _ = await send(client, scan_pass, f"G{guess}", "1234")
        assert status == 403
    status, body = await send(client, scan_pass, "P3", "0001")
    assert status == 429 and "次数过多" in body["error"]["message"]
    # Many phones guessing one member's digits: that member number locks, whatever the phone.
    for guess in range(5):
        client.session.cookie_jar.clear()
        status, _ = await send(client, await scan(client, path), "P4", f"{guess + 1}000")
        assert status == 403
    client.session.cookie_jar.clear()
    status, body = await send(client, await scan(client, path), "P4", "0002")
    assert status == 429 and "次数过多" in body["error"]["message"]
    assert await self_checkins(db) == []


async def test_a_session_past_its_check_in_window_refuses_and_keeps_the_try(
    client: Client, world: World, db: async_sessionmaker[AsyncSession]
) -> None:
    _, tokens = await live_session(client, world)
    await add_members(client, world)
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    old = await between_m_and_b(client, world, "上周的专题培训", long_ago, "T-OLD")
    status, body = await send(
        client, await scan(client, code_path(tokens["B"], "B", old)), "P1", "1234"
    )
    assert status == 403 and body["error"]["message"] == "该场次现在不在签到时间内。"
    assert await self_checkins(db) == []
    async with read_session(db) as session:
        kept = (await session.scalars(select(QuarantinedCheckIn))).all()
    assert [(q.reason, q.session_ref, q.payload["member_no"]) for q in kept] == [
        ("outside_window", old, "P1")
    ]


async def test_the_self_checkin_columns_match_their_migration(database_url: str) -> None:
    """Revision 0013 adds what the models describe (nothing more, nothing less)."""
    ours = ("phone_digest", "review_flags", "id_last4_hash", "selfcheckin_networks")

    def diffs(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        found = compare_metadata(context, Base.metadata)
        return [diff for diff in found if any(name in repr(diff) for name in ours)]

    engine = make_engine(database_url)
    async with engine.connect() as connection:
        found = await connection.run_sync(diffs)
    await engine.dispose()
    assert found == []


@pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set")
async def test_two_processes_count_wrong_tries_together_through_redis(
    client: Client, world: World, settings: Settings
) -> None:
    """Wrong digits sent to one server process lock the member number on another too."""
    redis = Redis.from_url(os.environ[REDIS_ENV])  # the tests' own database: no earlier counts
    for key in await redis.keys("hetang:limit:*"):
        await redis.delete(key)
    await redis.aclose()
    shared = dataclasses.replace(settings, redis_url=os.environ[REDIS_ENV])
    session_id, tokens = await live_session(client, world)
    await add_members(client, world)
    path = code_path(tokens["B"], "B", session_id)
    async with (
        TestClient(TestServer(create_app(shared))) as first,
        TestClient(TestServer(create_app(shared))) as second,
    ):
        for guess in range(5):
            first.session.cookie_jar.clear()
            status, _ = await send(first, await scan(first, path), "P4", f"{guess + 1}000")
            assert status == 403
        status, body = await send(second, await scan(second, path), "P4", "0002")
        assert status == 429 and "输错次数过多" in body["error"]["message"]
        status, _ = await send(second, await scan(second, path), "P3", "0001")
        assert status == 201
