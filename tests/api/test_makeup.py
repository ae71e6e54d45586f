"""Make-up sessions from a recording (issue 15, item 3) through the real app: a lesson is
broadcast (and so recorded), held and finalized with its two members absent; a make-up session
created with replay_of takes them as its roster; put on air, the recording is played through the
relay to the branch venue's agent, whose viewer decodes its pictures; the replay is not recorded
again, what cannot be replayed is refused with the field or the reason named, and the held
make-up shows in the member's record as the lesson's 补学."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import BroadcastSpan, Recording, RosterEntry, TrainingSession
from tests.support.broadcast_api import add_session, add_venue, audit_count, publish
from tests.support.openapi_check import check, load_spec
from tests.support.rtc_peers import description, offer_to_view
from tests.support.world import World

pytestmark = pytest.mark.sqlite_only
SPEC = load_spec()
Db = async_sessionmaker[AsyncSession]


async def count(db: Db, model: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def lesson(client: Any, world: World, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "title": "学习贯彻党的二十届四中全会精神",
        "topic_code": "T-MAKEUP",
        "credit_hours": 2,
        "main_venue": "MAIN",
        "branch_venues": ["B1"],
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        **extra,
    }
    return await check(  # type: ignore[no-any-return]
        client,
        SPEC,
        "post",
        "/api/v1/sessions",
        201,
        headers=world.auth("operator", "a"),
        json=body,
    )


async def act(client: Any, world: World, session_id: str, action: str, role: str) -> None:
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/{action}", headers=world.auth(role, "a")
    )
    assert answer.status == 200, await answer.text()


async def test_a_makeup_session_replays_the_recording_to_its_venues(
    client: Any, world: World, db: Db
) -> None:
    await add_venue(client, world, "MAIN")
    branch = await add_venue(client, world, "B1")
    for number, name in (("MU-1", "赵学员"), ("MU-2", "钱学员")):
        answer = await client.post(
            "/api/v1/members",
            headers=world.auth("admin", "a"),
            json={"member_no": number, "name": name, "org_code": "a1", "category": "ordinary"},
        )
        assert answer.status == 201
    original = await lesson(
        client, world, roster=[{"member_no": n, "venue": "B1"} for n in ("MU-1", "MU-2")]
    )
    publisher = await publish(client, world, original["id"])
    await asyncio.sleep(12)  # the recorder asks for a keyframe every 5 s: joiners find one
    ended = await client.delete(
        f"/api/v1/sessions/{original['id']}/broadcast", headers=world.auth("operator", "a")
    )
    assert ended.status == 200
    await publisher.close()
    for action, role in (("start", "operator"), ("end", "operator"), ("finalize", "reviewer")):
        await act(client, world, original["id"], action, role)

    # What cannot be replayed is refused, and nothing is stored.
    sessions_before = await count(db, TrainingSession)
    refusals = (
        ({"replay_of": "nosuchsession"}, "replay_of", "没有可供补学播放的场次"),
        ({"topic_code": "T-OTHER", "replay_of": original["id"]}, "topic_code", "须与原场次一致"),
    )
    for changed, field, words in refusals:
        refused = await check(
            client,
            SPEC,
            "post",
            "/api/v1/sessions",
            422,
            headers=world.auth("operator", "a"),
            json={**_makeup_body(), **changed},
        )
        assert field in refused["error"]["fields"] and words in refused["error"]["message"]
    plain = await add_session(client, world, "MAIN", ["B1"])
    not_makeup = await check(
        client,
        SPEC,
        "post",
        f"/api/v1/sessions/{plain}/replay",
        409,
        headers=world.auth("operator", "a"),
    )
    assert "是直播课，不是补学场次" in not_makeup["error"]["message"]
    assert await count(db, TrainingSession) == sessions_before + 1  # only the plain one

    makeup = await lesson(
        client, world, title="补学：学习贯彻党的二十届四中全会精神", replay_of=original["id"]
    )
    assert makeup["replay_of"] == original["id"] and makeup["roster_size"] == 2
    async with db() as session:
        makeup_id = await session.scalar(
            select(TrainingSession.id).where(TrainingSession.public_id == makeup["id"])
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(RosterEntry)
                .where(RosterEntry.session_id == makeup_id)
            )
            == 2
        )
    shown = await check(
        client,
        SPEC,
        "get",
        f"/api/v1/sessions/{makeup['id']}",
        200,
        headers=world.auth("reviewer", "a"),
    )
    assert shown["replay_of"] == original["id"]

    await check(
        client,
        SPEC,
        "post",
        f"/api/v1/sessions/{makeup['id']}/replay",
        200,
        headers=world.auth("operator", "a"),
    )
    again = await client.post(
        f"/api/v1/sessions/{makeup['id']}/replay", headers=world.auth("operator", "a")
    )
    assert again.status == 409
    viewer = await offer_to_view()
    try:
        subscribed = await client.post(
            f"/api/v1/agent/sessions/{makeup['id']}/subscribe",
            headers={"Authorization": f"Bearer {branch}"},
            json={"sdp": viewer.pc.localDescription.sdp, "type": "offer"},
        )
        assert subscribed.status == 200, await subscribed.text()
        await viewer.pc.setRemoteDescription(description(await subscribed.json()))
        await viewer.frames_after(time.monotonic(), 10)  # the venue decodes the recording
        wall = await (
            await client.get(
                f"/api/v1/sessions/{makeup['id']}/wall", headers=world.auth("reviewer", "a")
            )
        ).json()
        assert wall["broadcast"]["on"] and wall["broadcast"]["publishing"]
        assert wall["broadcast"]["recording"] == {"state": "off", "problem": None}
    finally:
        stop = await client.delete(
            f"/api/v1/sessions/{makeup['id']}/broadcast", headers=world.auth("operator", "a")
        )
        await viewer.pc.close()
    assert stop.status == 200
    assert await count(db, Recording) == 1  # the replay is not recorded again
    async with db() as session:
        spans = list(
            await session.scalars(
                select(BroadcastSpan).where(BroadcastSpan.session_id == makeup_id)
            )
        )
    assert len(spans) == 1 and spans[0].ended_at is not None
    assert await audit_count(db, "session.broadcast_start") == 2

    # Held and finalized, the make-up is in each member's record as the lesson's 补学.
    for action, role in (("start", "operator"), ("end", "operator"), ("finalize", "reviewer")):
        await act(client, world, makeup["id"], action, role)
    member = await client.get("/members/MU-1", headers=world.auth("admin", "a"))
    text = await member.text()
    assert member.status == 200
    assert "补学：“学习贯彻党的二十届四中全会精神”" in text
    record = await check(
        client,
        SPEC,
        "get",
        "/api/v1/members/MU-1/record",
        200,
        headers=world.auth("reviewer", "a"),
    )
    by_session = {entry["session_id"]: entry for entry in record["entries"]}
    assert by_session[makeup["id"]]["makeup_of"] == {
        "session_id": original["id"],
        "title": "学习贯彻党的二十届四中全会精神",
    }
    assert by_session[original["id"]]["makeup_of"] is None


def _makeup_body() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": "补学",
        "topic_code": "T-MAKEUP",
        "credit_hours": 2,
        "main_venue": "MAIN",
        "branch_venues": ["B1"],
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=3)).isoformat(),
    }
