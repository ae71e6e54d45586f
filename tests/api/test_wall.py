"""The venue wall: each venue's agent, head count and stream health, the broadcast, and a
WebSocket that says when to re-read."""

from __future__ import annotations

import asyncio
import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passthrough import peer
from server.auth.principal import WHOLE_TREE
from server.db.session import read_session
from server.domain import vocabulary
from server.domain.labels import ICE_PATH_LABELS
from server.services.wall import (
    STREAM_STALE_AFTER,
    Readiness,
    StreamHealth,
    WallTile,
    arrange,
    readiness,
    venue_wall,
)
from tests.support import browser
from tests.support.openapi_check import load_spec, response_schema, validate_json
from tests.support.stream_stats import post_samples
from tests.support.world import World

WALL = "/api/v1/sessions/{id}/wall"


@functools.cache
def _spec() -> dict[str, Any]:
    """openapi.yaml, which the wall's answers must match exactly."""
    return load_spec()


async def _venues(client: Any, world: World, *codes: str) -> dict[str, str]:
    """New venues of county A; their agent tokens by code."""
    tokens = {}
    for code in codes:
        answer = await client.post(
            "/api/v1/venues",
            headers=world.auth("admin", "a"),
            json={"code": code, "name": f"会场{code}", "org_code": "a1"},
        )
        assert answer.status == 201, await answer.text()
        tokens[code] = (await answer.json())["token"]
    return tokens


async def _plain_session(client: Any, world: World, main: str, branches: list[str]) -> str:
    """A session running now, with no roster."""
    now = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sessions",
        headers=world.auth("admin", "a"),
        json={
            "title": "合堂培训",
            "topic_code": "W",
            "credit_hours": 1,
            "main_venue": main,
            "branch_venues": branches,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert created.status == 201, await created.text()
    public_id: str = (await created.json())["id"]
    return public_id


async def _session(client: Any, world: World) -> tuple[str, str]:
    admin = world.auth("admin", "a")
    tokens = await _venues(client, world, "M", "B")
    for number in ("P1", "P2", "P3"):
        await client.post(
            "/api/v1/members",
            headers=admin,
            json={"member_no": number, "name": "党员", "org_code": "a1", "category": "ordinary"},
        )
    now = datetime.now(UTC)
    created = await client.post(
        "/api/v1/sessions",
        headers=admin,
        json={
            "title": "合堂培训",
            "topic_code": "W",
            "credit_hours": 1,
            "main_venue": "M",
            "branch_venues": ["B"],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "roster": [
                {"member_no": "P1", "venue": "B"},
                {"member_no": "P2", "venue": "B"},
                {"member_no": "P3", "venue": "M"},
            ],
        },
    )
    return (await created.json())["id"], tokens["B"]


async def _check_in(client: Any, token: str, session_id: str, member: str) -> None:
    now = datetime.now(UTC).isoformat()
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "sent_at": now,
            "events": [
                {
                    "event_id": str(uuid.uuid4()),
                    "session_id": session_id,
                    "member_no": member,
                    "kind": "in",
                    "at": now,
                    "source": "scanner",
                }
            ],
        },
    )
    assert (await answer.json())["results"][0]["status"] == "accepted"


async def test_the_wall_counts_heads_and_agents(client: Any, world: World) -> None:
    session_id, branch = await _session(client, world)
    await _check_in(client, branch, session_id, "P1")
    await _check_in(client, branch, session_id, "P1")  # the same person twice counts once
    await client.post(
        "/api/v1/agent/heartbeat",
        headers={"Authorization": f"Bearer {branch}"},
        json={"state": "idle", "session_id": session_id, "queue_depth": 2, "agent_version": "1"},
    )
    answer = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
    )
    body = await answer.json()
    assert body["state"] == "scheduled"
    assert [
        (v["code"], v["role"], v["online"], v["checked_in"], v["expected"], v["queue_depth"])
        for v in body["venues"]
    ] == [("M", "main", False, 0, 1, None), ("B", "branch", True, 1, 2, 2)]
    hidden = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "b")
    )
    assert hidden.status == 404


async def test_the_wall_shows_how_each_picture_travels(client: Any, world: World) -> None:
    session_id, branch = await _session(client, world)
    beat = {"state": "receiving", "session_id": session_id, "queue_depth": 0, "agent_version": "1"}

    async def path_on_the_wall(body: dict[str, Any]) -> str | None:
        sent = await client.post(
            "/api/v1/agent/heartbeat", headers={"Authorization": f"Bearer {branch}"}, json=body
        )
        assert sent.status == 200
        answer = await client.get(
            f"/api/v1/sessions/{session_id}/wall", headers=world.auth("operator", "a")
        )
        venues = {v["code"]: v for v in (await answer.json())["venues"]}
        assert venues["M"]["ice_path"] is None  # its agent never said
        path: str | None = venues["B"]["ice_path"]
        return path

    assert await path_on_the_wall({**beat, "ice_path": "relay/tcp"}) == "relay/tcp"
    assert await path_on_the_wall({**beat, "ice_path": "host/udp"}) == "host/udp"
    # Not receiving any more (or an agent from before the field): no path.
    assert await path_on_the_wall({**beat, "state": "idle"}) is None
    page = await client.get(f"/sessions/{session_id}/console", headers=world.auth("operator", "a"))
    assert "网络线路" in await page.text()


async def test_the_live_socket_says_when_to_reread(client: Any, world: World, db: Any) -> None:
    session_id, branch = await _session(client, world)
    await browser.add_user(db, "op-wall", "operator", "a")
    async with browser.Browser(client) as page:
        await page.signed_in("op-wall")
        async with page.request("GET", f"/sessions/{session_id}/console") as response:
            html = await response.text()
        assert response.status == 200 and "会场总览" in html and "会场B" in html
        async with page.session.ws_connect(f"/sessions/{session_id}/live") as socket:
            await asyncio.sleep(0.1)
            await _check_in(client, branch, session_id, "P2")
            message = await asyncio.wait_for(socket.receive_json(), timeout=10)
        assert message == {"type": "wall_changed"}
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with page.session.ws_connect(
                f"/sessions/{session_id}/live", headers={"Origin": "http://evil.example"}
            ):
                pass


async def _stats(client: Any, token: str, session_id: str, *samples: dict[str, Any]) -> None:
    assert await post_samples(client, token, session_id, list(samples)) == len(samples)


def _sample(ago: float, state: str, **numbers: Any) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(seconds=ago)).replace(microsecond=0)
    return {
        "at": at.isoformat(),
        "state": state,
        "bitrate_kbps": 900.0,
        "fps": 25.0,
        "loss_pct": 0.0,
        "jitter_ms": 4.0,
        "freezes": 0,
        "frames_decoded": 1000,
        **numbers,
    }


async def _wall(client: Any, world: World, session_id: str) -> dict[str, Any]:
    answer = await client.get(
        f"/api/v1/sessions/{session_id}/wall", headers=world.auth("reviewer", "a")
    )
    assert answer.status == 200, await answer.text()
    body: dict[str, Any] = await answer.json()
    validate_json(body, response_schema(_spec(), "get", WALL, 200))
    return body


async def test_the_wall_shows_each_venues_latest_stream_sample(client: Any, world: World) -> None:
    session_id, branch = await _session(client, world)
    before = await _wall(client, world, session_id)
    assert [v["stream"] for v in before["venues"]] == [None, None]
    assert before["broadcast"] == {
        "on": False,
        "publishing": False,
        "subscribers": 0,
        "since": None,
        "recording": {"state": "off", "problem": None},
    }
    latest = _sample(2, "degraded", bitrate_kbps=612.5, fps=17.5, loss_pct=3.25, freezes=2)
    # Out of order on purpose: the newest sample wins, not the last one sent.
    await _stats(client, branch, session_id, latest, _sample(8, "good"))
    await _stats(client, branch, session_id, _sample(6, "down", bitrate_kbps=0, fps=0))
    main, branch_tile = (await _wall(client, world, session_id))["venues"]
    assert main["code"] == "M" and main["stream"] is None  # the origin reports nothing
    assert branch_tile["stream"] == {
        "state": "degraded",
        "stale": False,
        "bitrate_kbps": 612.5,
        "fps": 17.5,
        "loss_pct": 3.25,
        "freezes": 2,
        "at": latest["at"].replace("+00:00", "Z"),
    }


async def test_a_sample_older_than_three_reports_reads_as_down(client: Any, world: World) -> None:
    session_id, branch = await _session(client, world)
    old = _sample(STREAM_STALE_AFTER.total_seconds() + 5, "good", bitrate_kbps=1100.0)
    await _stats(client, branch, session_id, old)
    stream = (await _wall(client, world, session_id))["venues"][1]["stream"]
    assert stream["state"] == "down" and stream["stale"] is True
    assert stream["bitrate_kbps"] == 1100.0  # the last figures stay, marked stale
    assert stream["at"] == old["at"].replace("+00:00", "Z")
    fresh = _sample(1, "good")
    await _stats(client, branch, session_id, fresh)
    stream = (await _wall(client, world, session_id))["venues"][1]["stream"]
    assert (stream["state"], stream["stale"]) == ("good", False)


async def test_samples_of_other_sessions_stay_off_this_wall(client: Any, world: World) -> None:
    first, branch = await _session(client, world)
    await _venues(client, world, "M2")
    second = await _plain_session(client, world, "M2", ["B"])  # the same branch venue
    await _stats(client, branch, first, _sample(1, "good"))
    assert (await _wall(client, world, first))["venues"][1]["stream"]["state"] == "good"
    assert [v["stream"] for v in (await _wall(client, world, second))["venues"]] == [None, None]


async def test_stream_samples_are_read_in_one_query_whatever_the_venues(
    db: async_sessionmaker[AsyncSession], client: Any, world: World
) -> None:
    small, branch = await _session(client, world)
    tokens = await _venues(client, world, "M3", "B3", "C3", "D3")
    large = await _plain_session(client, world, "M3", ["B", "B3", "C3", "D3"])
    for code, token in [("B", branch), *tokens.items()]:
        if code != "M3":
            await _stats(client, token, large, _sample(1, "good"))
    engine = db.kw["bind"]
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        counts = []
        for public_id in (small, large):
            statements.clear()
            async with read_session(db) as session:
                _, tiles = await venue_wall(session, WHOLE_TREE, public_id, datetime.now(UTC))
            counts.append((len(tiles), len(statements)))
            assert sum("stream_samples" in s for s in statements) == 1
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert counts[0][0] == 2 and counts[1][0] == 5
    assert counts[0][1] == counts[1][1]


def test_the_server_knows_every_path_an_agent_reports() -> None:
    assert vocabulary.ICE_PATHS == peer.ICE_PATHS
    assert set(ICE_PATH_LABELS) == set(vocabulary.ICE_PATHS)


def test_the_wall_judges_each_venue_and_shows_the_worst_first() -> None:
    now = datetime.now(UTC)

    def tile(
        code: str, role: str, online: bool, state: str | None, stale: bool = False
    ) -> WallTile:
        stream = None if state is None else StreamHealth(state, 1.0, 1.0, 0.0, 0, now, stale)
        return WallTile(code, f"会场{code}", role, online, None, None, None, None, 0, 0, stream)

    tiles = [
        tile("A", "branch", True, "good"),
        tile("B", "branch", False, "down", stale=True),
        tile("C", "branch", True, "degraded"),
        tile("D", "branch", False, None),
        tile("E", "branch", True, "down"),
        tile("F", "branch", True, "good", stale=True),
        tile("M", "main", False, None),  # no agent at the main venue: it sends from a page
    ]
    on_air = arrange(tiles, on_air=True, publishing=True)
    assert [(item.tile.code, item.condition) for item in on_air] == [
        ("M", "on_air"),
        ("B", "offline"),
        ("D", "offline"),
        ("E", "down"),
        ("F", "no_report"),
        ("C", "degraded"),
        ("A", "good"),
    ]
    assert [item.problem for item in on_air] == [False, True, True, True, True, True, False]
    assert readiness(on_air, on_air=True) == Readiness(
        branches=6, online=4, offline=("会场B", "会场D"), receiving_well=1, ready=False
    )
    # After 结束直播 the agents report nothing to receive: planned, not an outage.
    ended = arrange(tiles, on_air=False, publishing=False)
    assert {item.tile.code: item.condition for item in ended} == {
        "M": "not_on_air",
        "B": "offline",
        "D": "offline",
        "A": "off_air",
        "C": "off_air",
        "E": "off_air",
        "F": "off_air",
    }
    online = [tile(code, "branch", True, "down") for code in "XY"]
    online.append(tile("M", "main", False, None))
    assert readiness(arrange(online, on_air=False, publishing=False), on_air=False).ready
    assert not readiness(arrange(online, on_air=True, publishing=True), on_air=True).ready
    assert arrange(online, on_air=True, publishing=False)[0].condition == "source_lost"


async def test_only_the_organizers_operators_get_broadcast_controls(
    client: Any, world: World, db: Any
) -> None:
    await _venues(client, world, "M")
    answer = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "b"),
        json={"code": "TC", "name": "铜城镇会场", "org_code": "b1"},
    )
    assert answer.status == 201, await answer.text()
    # County A organizes; county B only takes part through its branch venue.
    session_id = await _plain_session(client, world, "M", ["TC"])
    seen = {}
    for username, role, org in (
        ("op-a", "operator", "a"),
        ("rev-a", "reviewer", "a"),
        ("op-b", "operator", "b"),
    ):
        await browser.add_user(db, username, role, org)
        async with browser.Browser(client) as page:
            await page.signed_in(username)
            async with page.request("GET", f"/sessions/{session_id}/console") as response:
                html = await response.text()
            assert response.status == 200, html[:500]
            seen[username] = ('id="broadcast"' in html, "铜城镇会场" in html)
    assert seen == {"op-a": (True, True), "rev-a": (False, True), "op-b": (False, True)}
