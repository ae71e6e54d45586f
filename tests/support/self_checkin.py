"""A phone's self check-in (扫码签到) through the real app, as the tests make one: members with
the last four digits of their ID number, a code the venue's agent would sign, the phone page's
pass, the form's answer, and the self check-ins as stored."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import CheckIn, Member
from server.db.session import read_session
from tests.support.client import Client
from tests.support.world import World
from venue_agent.checkin_code import CodeMaker

MEMBERS = (("P1", "1234"), ("P2", "567X"), ("P3", "0001"), ("P4", "0002"))
PASS = re.compile(r'data-pass="([^"]+)"')


async def add_members(client: Client, world: World) -> None:
    for number, last4 in MEMBERS:
        answer = await client.post(
            "/api/v1/members",
            headers=world.auth("admin", "a"),
            json={
                "member_no": number,
                "name": f"党员{number}",
                "org_code": "a1",
                "category": "ordinary",
                "id_last4": last4,
            },
        )
        assert answer.status == 201, await answer.text()


def code_path(token: str, venue: str, session_id: str, when: float | None = None) -> str:
    url = CodeMaker("http://phone.example", token).code(venue, session_id, when).url
    return url.removeprefix("http://phone.example")


async def scan(client: Client, path: str) -> str:
    """Open the page as a phone does; answers the pass its form carries."""
    page = await client.get(path)
    html = await page.text()
    assert page.status == 200, html
    found = PASS.search(html)
    assert found is not None
    return found.group(1)


async def send(client: Client, scan_pass: str, member_no: str, last4: str, kind: str = "in") -> Any:
    answer = await client.post(
        "/api/v1/self-checkins",
        json={"pass": scan_pass, "member_no": member_no, "id_last4": last4, "kind": kind},
    )
    return answer.status, await answer.json()


async def self_checkins(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str | None]]:
    async with read_session(db) as session:
        rows = await session.execute(
            select(Member.member_no, CheckIn.review_flags)
            .join(Member, Member.id == CheckIn.member_id)
            .where(CheckIn.source == "self", CheckIn.phone_digest.is_not(None))
            .order_by(CheckIn.id)
        )
        return [(number, flags) for number, flags in rows]
