"""openapi.yaml describes exactly the server's API, and real answers match its schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from openapi_spec_validator import validate

from server.app import create_app
from server.settings import Settings
from tests.support.openapi_check import check, load_spec, response_schema, validate_json
from tests.support.world import World

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


def test_spec_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # type: ignore[arg-type]


def _api_routes(settings: Settings) -> set[tuple[str, str]]:
    found = set()
    for route in create_app(settings).router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("HEAD", "OPTIONS") or not (
            path.startswith("/api/") or path == "/healthz"
        ):
            continue
        found.add((route.method.lower(), path))
    return found


def test_every_api_route_is_described_and_nothing_else(
    spec: dict[str, Any], settings: Settings
) -> None:
    described = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    served = _api_routes(settings)
    assert served - described == set(), "routes missing from openapi.yaml"
    assert described - served == set(), "openapi.yaml describes routes the server lacks"


async def test_answers_match_the_schemas(
    client: Any, world: World, spec: dict[str, Any], settings: Settings
) -> None:
    admin = world.auth("admin", "a")
    await check(client, spec, "get", "/healthz", 200)
    await check(client, spec, "get", "/api/v1/me", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/me", 401)
    await check(client, spec, "get", "/api/v1/organizations", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/organizations/a1", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/organizations/b1", 404, headers=admin)
    await check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        201,
        headers=admin,
        json={"code": "a2", "name": "小溪河镇党委", "level": "committee", "parent_code": "a"},
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        409,
        headers=admin,
        json={"code": "a2", "name": "重复", "level": "committee", "parent_code": "a"},
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/organizations",
        422,
        headers=admin,
        json={"code": "a3", "name": "x", "level": "planet", "parent_code": "a"},
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/members",
        201,
        headers=admin,
        json={
            "member_no": "M001",
            "name": "张三",
            "org_code": "a1a",
            "category": "ordinary",
            "card_code": "C001",
        },
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/members/import",
        200,
        headers={**admin, "Content-Type": "text/csv"},
        data="member_no,name,org_code,category\nM002,李四,a1a,secretary\n".encode(),
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/members/import",
        422,
        headers={**admin, "Content-Type": "text/csv"},
        data=b"member_no,name,org_code,category\nM003,,a1a,secretary\n",
    )
    await check(client, spec, "get", "/api/v1/members?q=M00", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/members", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/members/M001", 200, headers=admin)
    await check(
        client, spec, "get", "/api/v1/members/M001", 404, headers=world.auth("reviewer", "b")
    )
    venue = await check(
        client,
        spec,
        "post",
        "/api/v1/venues",
        201,
        headers=admin,
        json={"code": "v-a", "name": "西泉镇党校", "org_code": "a1"},
    )
    await check(client, spec, "get", "/api/v1/venues", 200, headers=admin)
    await check(client, spec, "get", "/api/v1/venues/v-a", 200, headers=admin)
    await check(
        client,
        spec,
        "post",
        "/api/v1/agent/hello",
        200,
        headers={"Authorization": f"Bearer {venue['token']}"},
        json={"agent_version": "0.1.0", "hostname": "pc-1"},
    )
    rotated = await check(client, spec, "post", "/api/v1/venues/v-a/token", 200, headers=admin)
    assert rotated["token"] != venue["token"]
    await check(
        client,
        spec,
        "post",
        "/api/v1/agent/hello",
        401,
        headers={"Authorization": f"Bearer {venue['token']}"},
        json={"agent_version": "0.1.0", "hostname": "pc-1"},
    )
    branch = await check(
        client,
        spec,
        "post",
        "/api/v1/venues",
        201,
        headers=admin,
        json={"code": "v-a1a", "name": "西泉村活动室", "org_code": "a1a"},
    )
    session_id = await _sessions(client, spec, world)
    await _agent(client, spec, session_id, rotated["token"], branch["token"])
    await _workflow_and_results(client, spec, world, session_id, settings)


def _window() -> tuple[datetime, datetime]:
    """A session running now (an hour either side), in whole seconds."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def _new_session(**changes: Any) -> dict[str, Any]:
    starts_at, ends_at = _window()
    body = {
        "title": "政治理论首课",
        "topic_code": "ZZ-2026",
        "starts_at": starts_at.astimezone(timezone(timedelta(hours=8))).isoformat(),
        "ends_at": ends_at.isoformat(),
        "credit_hours": 1.5,
        "main_venue": "v-a",
        "branch_venues": ["v-a1a"],
        "policy": {"min_ratio": 0.75, "late_grace_min": 15},
        "roster": [
            {"member_no": "M001", "venue": "v-a1a"},
            {"member_no": "M002", "venue": "v-a"},
        ],
    }
    return {**body, **changes}


async def _sessions(client: Any, spec: dict[str, Any], world: World) -> str:
    """Scheduling, reading and editing sessions; returns the id of one left scheduled."""
    admin, operator = world.auth("admin", "a"), world.auth("operator", "a")
    reviewer = world.auth("reviewer", "a")
    path = "/api/v1/sessions"
    created = await check(client, spec, "post", path, 201, headers=operator, json=_new_session())
    assert created["credit_hours"] == 1.5 and created["roster_size"] == 2
    assert created["policy"]["min_ratio"] == 0.75 and created["branch_venues"] == ["v-a1a"]
    session_id = created["id"]
    await check(client, spec, "post", path, 401, json=_new_session())
    await check(client, spec, "post", path, 403, headers=reviewer, json=_new_session())
    await check(client, spec, "post", path, 422, headers=admin, json=_new_session(credit_hours=0))
    await check(
        client, spec, "post", path, 422, headers=admin, json=_new_session(main_venue="nosuch")
    )
    listed = await check(client, spec, "get", path, 200, headers=reviewer)
    assert [item["id"] for item in listed["sessions"]] == [session_id]
    await check(client, spec, "get", path, 401)
    await check(client, spec, "get", path, 403, headers=world.auth("venue_staff", "a"))
    one = f"{path}/{session_id}"
    assert await check(client, spec, "get", one, 200, headers=reviewer) == created
    await check(client, spec, "get", f"{path}/nosuch", 404, headers=reviewer)
    await check(client, spec, "get", one, 404, headers=world.auth("reviewer", "b"))
    edited = await check(
        client, spec, "put", one, 200, headers=operator, json=_new_session(title="第一讲")
    )
    assert edited["title"] == "第一讲" and edited["id"] == session_id
    await check(client, spec, "put", one, 422, headers=operator, json=_new_session(roster=7))
    await check(client, spec, "put", one, 404, headers=world.auth("operator", "b"), json=edited)
    await check(client, spec, "put", one, 403, headers=reviewer, json=_new_session())
    await check(client, spec, "get", f"{one}/attendance", 409, headers=reviewer)
    await check(client, spec, "post", f"{one}/approve", 409, headers=reviewer)
    await check(client, spec, "post", f"{one}/start", 403, headers=reviewer)
    await check(client, spec, "post", f"{path}/nosuch/start", 404, headers=operator)
    return str(session_id)


def _event(session_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "member_no": "M001",
        "kind": "in",
        "at": datetime.now(UTC).isoformat(),
        "source": "scanner",
        **changes,
    }


async def _agent(
    client: Any, spec: dict[str, Any], session_id: str, main_token: str, branch_token: str
) -> None:
    """Every agent call, its success and its documented errors."""
    main = {"Authorization": f"Bearer {main_token}"}
    branch = {"Authorization": f"Bearer {branch_token}"}
    schedule = await check(client, spec, "get", "/api/v1/agent/schedule", 200, headers=branch)
    assert [(s["id"], s["role"]) for s in schedule["sessions"]] == [(session_id, "branch")]
    assert [line["card_code"] for line in schedule["sessions"][0]["roster"]] == ["C001", None]
    first = await client.get("/api/v1/agent/schedule", headers=branch)
    await check(
        client,
        spec,
        "get",
        "/api/v1/agent/schedule",
        304,
        headers={**branch, "If-None-Match": first.headers["ETag"]},
    )
    await check(client, spec, "get", "/api/v1/agent/schedule", 401)
    ics = await check(client, spec, "get", "/api/v1/agent/schedule.ics", 200, headers=main)
    assert "BEGIN:VCALENDAR" in ics and f"{session_id}@hetang" in ics
    await check(client, spec, "get", "/api/v1/agent/schedule.ics", 401)
    beat = {
        "state": "receiving",
        "session_id": session_id,
        "queue_depth": 0,
        "agent_version": "1",
        "ice_path": "srflx/udp",
    }
    answer = await check(
        client, spec, "post", "/api/v1/agent/heartbeat", 200, headers=main, json=beat
    )
    assert answer["commands"] == []
    await check(
        client,
        spec,
        "post",
        "/api/v1/agent/heartbeat",
        422,
        headers=main,
        json={**beat, "queue_depth": -1},
    )
    await check(client, spec, "post", "/api/v1/agent/heartbeat", 401, json=beat)
    sent_at = datetime.now(UTC).isoformat()
    good = _event(session_id)
    by_card = _event(session_id, member_no=None, card_code="C001")
    batch = {
        "sent_at": sent_at,
        "events": [good, dict(good), by_card, _event(session_id, member_no="nobody")],
    }
    results = await check(
        client, spec, "post", "/api/v1/agent/checkins", 200, headers=branch, json=batch
    )
    assert [(r["status"], r["reason"]) for r in results["results"]] == [
        ("accepted", None),
        ("duplicate", None),
        ("accepted", None),
        ("rejected", "unknown_member"),
    ]
    invalid = await check(
        client,
        spec,
        "post",
        "/api/v1/agent/checkins",
        200,
        headers=branch,
        json={"sent_at": sent_at, "events": []},
    )
    assert invalid == {"results": []}
    malformed = await client.post(
        "/api/v1/agent/checkins",
        headers=branch,
        json={"sent_at": sent_at, "events": [{"event_id": 7}]},
    )
    body = await malformed.json()
    validate_json(body, response_schema(spec, "post", "/api/v1/agent/checkins", malformed.status))
    assert body["results"] == [{"event_id": None, "status": "rejected", "reason": "invalid"}]
    await check(
        client,
        spec,
        "post",
        "/api/v1/agent/checkins",
        413,
        headers=branch,
        json={"sent_at": sent_at, "events": [_event(session_id) for _ in range(501)]},
    )
    await check(
        client,
        spec,
        "post",
        "/api/v1/agent/checkins",
        422,
        headers=branch,
        json={"sent_at": sent_at, "events": {}},
    )
    await check(client, spec, "post", "/api/v1/agent/checkins", 401, json=batch)
    now = datetime.now(UTC)
    sample = {
        "at": now.isoformat(),
        "state": "good",
        "bitrate_kbps": 950.5,
        "fps": 30,
        "loss_pct": 0.0,
        "jitter_ms": 3.5,
        "freezes": 0,
        "frames_decoded": 1800,
    }
    stats = {"sent_at": now.isoformat(), "session_id": session_id, "samples": [sample]}
    path = "/api/v1/agent/stream-stats"
    assert await check(client, spec, "post", path, 200, headers=branch, json=stats) == {
        "accepted": 1
    }
    assert await check(client, spec, "post", path, 200, headers=branch, json=stats) == {
        "accepted": 0
    }
    await check(
        client, spec, "post", path, 404, headers=branch, json={**stats, "session_id": "nosuch"}
    )
    await check(
        client,
        spec,
        "post",
        path,
        422,
        headers=branch,
        json={**stats, "samples": [{**sample, "state": "sunny"}]},
    )
    await check(
        client, spec, "post", path, 413, headers=branch, json={**stats, "samples": [sample] * 2001}
    )
    await check(client, spec, "post", path, 401, json=stats)


async def _workflow_and_results(
    client: Any, spec: dict[str, Any], world: World, session_id: str, settings: Settings
) -> None:
    """Every state change, the attendance and a member's record."""
    operator, reviewer = world.auth("operator", "a"), world.auth("reviewer", "a")
    admin = world.auth("admin", "a")
    one = f"/api/v1/sessions/{session_id}"
    assert (await check(client, spec, "post", f"{one}/start", 200, headers=operator))[
        "state"
    ] == "live"
    await check(client, spec, "post", f"{one}/start", 409, headers=operator)
    await check(client, spec, "put", one, 409, headers=operator, json=_new_session())
    await check(client, spec, "post", f"{one}/end", 200, headers=operator)
    await check(client, spec, "post", f"{one}/end", 401)
    await check(client, spec, "post", f"{one}/finalize", 403, headers=operator)
    await check(client, spec, "post", f"{one}/finalize", 200, headers=reviewer)
    await check(client, spec, "post", f"{one}/finalize", 200, headers=reviewer)
    attendance = await check(client, spec, "get", f"{one}/attendance", 200, headers=reviewer)
    assert [m["member_no"] for m in attendance["members"]] == ["M001", "M002"]
    assert attendance["members"][1]["reason"] == "no_checkin"
    await check(client, spec, "get", f"{one}/attendance", 404, headers=world.auth("reviewer", "b"))
    year = datetime.now(UTC).astimezone(settings.tz).year
    record = await check(
        client, spec, "get", f"/api/v1/members/M001/record?year={year}", 200, headers=reviewer
    )
    assert [entry["session_id"] for entry in record["entries"]] == [session_id]
    await check(client, spec, "get", "/api/v1/members/M001/record", 200, headers=reviewer)
    await check(client, spec, "get", "/api/v1/members/M001/record?year=abc", 422, headers=reviewer)
    await check(client, spec, "get", "/api/v1/members/M001/record?year=1999", 422, headers=reviewer)
    await check(client, spec, "get", "/api/v1/members/nosuch/record", 404, headers=reviewer)
    await check(
        client,
        spec,
        "get",
        "/api/v1/members/M001/record",
        404,
        headers=world.auth("reviewer", "b"),
    )
    await check(client, spec, "get", "/api/v1/members/M001/record", 401)
    await check(client, spec, "post", f"{one}/approve", 200, headers=reviewer)
    await check(client, spec, "post", f"{one}/approve", 409, headers=reviewer)
    await check(client, spec, "post", f"{one}/reopen", 403, headers=reviewer)
    await check(client, spec, "post", f"{one}/reopen", 200, headers=admin)
    await check(client, spec, "post", f"{one}/reopen", 409, headers=admin)
    await check(client, spec, "get", f"{one}/attendance", 200, headers=admin)
