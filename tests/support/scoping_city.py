"""The two counties the scoping tests work in: 凤阳县 (a) with venue FY and member A1, 天长市 (b)
with venue TC and members B1–B3; a session of 凤阳县's operator on a past day."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.db.models import Member, RosterEntry
from server.db.session import read_session
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.sessions import add_venues
from tests.support.world import World

EN = {"Accept-Language": "en"}


def at(hh: int, mm: int = 0) -> str:
    """Shanghai wall-clock time on the session's day (a past window is allowed)."""
    return f"2026-03-02T{hh:02d}:{mm:02d}:00+08:00"


def session_body(roster: list[tuple[str, str]], **changes: Any) -> dict[str, Any]:
    """A 09:00–12:00 session of 3 学时 at 凤阳县's venue FY."""
    return {
        "title": "凤阳县党员培训",
        "topic_code": "T-SCOPE",
        "starts_at": at(9),
        "ends_at": at(12),
        "credit_hours": 3,
        "main_venue": "FY",
        "branch_venues": [],
        "roster": [{"member_no": number, "venue": venue} for number, venue in roster],
        **changes,
    }


async def seed(client: Client, world: World) -> dict[str, str]:
    """Venue FY of 凤阳县 (a) and TC of 天长市 (b); members A1 (a1a), B1, B2, B3 (b1); the
    venues' agent tokens by code."""
    root = {**world.auth("admin", "all"), **EN}
    tokens = await add_venues(client, root, (("FY", "a"), ("TC", "b")))
    for number, org in (("A1", "a1a"), ("B1", "b1"), ("B2", "b1"), ("B3", "b1")):
        body = {
            "member_no": number,
            "name": f"天长党员{number}" if org == "b1" else "凤阳党员",
            "org_code": org,
            "category": "ordinary",
            "card_code": f"card-{number}",
        }
        answer = await client.post("/api/v1/members", headers=root, json=body)
        assert answer.status == 201, await answer.text()
    return tokens


async def rostered(db: Db) -> list[str]:
    """The member numbers on any session's roster."""
    async with read_session(db) as session:
        numbers = await session.execute(
            select(Member.member_no).join(RosterEntry, RosterEntry.member_id == Member.id)
        )
        return list(numbers.scalars())


async def scheduled_with_a1(client: Client, world: World) -> tuple[str, dict[str, str]]:
    """The seeded city and a session of 凤阳县's operator with A1 on its roster: its id and the
    operator's headers."""
    await seed(client, world)
    operator = {**world.auth("operator", "a"), **EN}
    created = await client.post(
        "/api/v1/sessions", headers=operator, json=session_body([("A1", "FY")])
    )
    assert created.status == 201, await created.text()
    return (await created.json())["id"], operator
