"""Sessions through the real API: the worked example of ATTENDANCE.md, scheduled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.client import Client
from tests.support.world import World


def at(hh: int, mm: int, ss: int = 0) -> str:
    """A Shanghai wall-clock time of the session's day, as ISO 8601 with its offset."""
    local = datetime(2026, 11, 20, hh, mm, ss)
    return local.isoformat() + "+08:00"


async def add_venues(
    client: Client, headers: dict[str, str], venues: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """Venues (code, organization) named 会场<code>, added as these headers' user; their agent
    tokens by code."""
    tokens = {}
    for code, org in venues:
        answer = await client.post(
            "/api/v1/venues",
            headers=headers,
            json={"code": code, "name": f"会场{code}", "org_code": org},
        )
        assert answer.status == 201, await answer.text()
        tokens[code] = (await answer.json())["token"]
    return tokens


async def schedule_worked_example(client: Client, world: World) -> tuple[str, dict[str, str]]:
    """Venues M (main), B1 and B2 (branches), members A C G E F K (cards card-<no>) and the
    session of 2026-11-20 09:00–12:00 scheduled by operator-a with A C G F at B1 and E at B2;
    answers its id and the venues' agent tokens by code."""
    admin = world.auth("admin", "a")
    tokens = await add_venues(client, admin, (("M", "a"), ("B1", "a1"), ("B2", "a1a")))
    for number in ("A", "C", "G", "E", "F", "K"):
        answer = await client.post(
            "/api/v1/members",
            headers=admin,
            json={
                "member_no": number,
                "name": f"党员{number}",
                "org_code": "a1a",
                "category": "ordinary",
                "card_code": f"card-{number}",
            },
        )
        assert answer.status == 201
    roster = [{"member_no": n, "venue": "B1"} for n in ("A", "C", "G", "F")]
    roster.append({"member_no": "E", "venue": "B2"})
    answer = await client.post(
        "/api/v1/sessions",
        headers=world.auth("operator", "a"),
        json={
            "title": "年轻干部淬炼成钢",
            "topic_code": "T-2026-01",
            "starts_at": at(9, 0),
            "ends_at": at(12, 0),
            "credit_hours": 3,
            "main_venue": "M",
            "branch_venues": ["B1", "B2"],
            "roster": roster,
        },
    )
    body = await answer.json()
    assert answer.status == 201, body
    assert body["state"] == "scheduled" and body["roster_size"] == 5
    return body["id"], tokens


async def live_session(client: Client, world: World) -> tuple[str, dict[str, str]]:
    """Venues M (main) and B (branch) of org a1, and a session running now between them (from 5
    minutes ago for two hours), scheduled by operator-a; answers its id and the venues' agent
    tokens by code."""
    tokens = await add_venues(client, world.auth("admin", "a"), (("M", "a1"), ("B", "a1")))
    now = datetime.now(UTC)
    session_id = await between_m_and_b(
        client,
        world,
        "学习贯彻党的二十届四中全会精神",
        now - timedelta(minutes=5),
        "LIVE",
        ends_at=now + timedelta(hours=2),
    )
    return session_id, tokens


async def between_m_and_b(
    client: Client,
    world: World,
    title: str,
    starts_at: datetime,
    topic: str = "T-2026-01",
    ends_at: datetime | None = None,
    roster: list[tuple[str, str]] | None = None,
) -> str:
    """A session from `starts_at` (for two hours unless `ends_at` says) with main venue M and
    branch venue B (those of `live_session`) and the roster's (member, venue) pairs (none by
    default), scheduled by operator-a; answers its id."""
    created = await client.post(
        "/api/v1/sessions",
        headers=world.auth("operator", "a"),
        json={
            "title": title,
            "topic_code": topic,
            "credit_hours": 2,
            "main_venue": "M",
            "branch_venues": ["B"],
            "starts_at": starts_at.isoformat(),
            "ends_at": (ends_at or starts_at + timedelta(hours=2)).isoformat(),
            "roster": [{"member_no": number, "venue": venue} for number, venue in roster or []],
        },
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["id"])


def scan_in(session_id: str, member: str, when: str) -> dict[str, Any]:
    """One scanner check-in as an agent records it."""
    return {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "member_no": member,
        "kind": "in",
        "at": when,
        "source": "scanner",
    }


async def upload_checkins(client: Client, token: str, events: list[dict[str, Any]]) -> None:
    """Upload check-ins with a venue's token, as its agent does; every one must be accepted."""
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {token}"},
        json={"sent_at": datetime.now(UTC).isoformat(), "events": events},
    )
    results = (await answer.json())["results"]
    assert [r["status"] for r in results] == ["accepted"] * len(events), results


async def advance(client: Client, world: World, session_id: str, *actions: str) -> None:
    """Move a session of subtree a along its workflow through the API: operator-a starts and
    ends it, reviewer-a finalizes and approves it."""
    for action in actions:
        who = "reviewer" if action in ("finalize", "approve") else "operator"
        answer = await client.post(
            f"/api/v1/sessions/{session_id}/{action}", headers=world.auth(who, "a")
        )
        assert answer.status == 200, await answer.text()


# The worked example's members, every one of whom has a result in its held month.
ALL = ["A", "C", "E", "F", "G", "K"]


async def held_month(client: Any, world: World) -> str:
    """The worked example's session of 2026-11-20, where only A scanned in at B1 (whose stream
    nobody reported: not verified) and K walked in at the main venue; finalized."""
    session_id, tokens = await schedule_worked_example(client, world)
    for venue, member, when in (("B1", "A", at(8, 50)), ("M", "K", at(9, 0))):
        await upload_checkins(client, tokens[venue], [scan_in(session_id, member, when)])
    for action, who in (("start", "operator"), ("end", "operator"), ("finalize", "reviewer")):
        answer = await client.post(
            f"/api/v1/sessions/{session_id}/{action}", headers=world.auth(who, "a")
        )
        assert answer.status == 200, await answer.text()
    return session_id
