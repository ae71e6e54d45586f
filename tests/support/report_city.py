"""A city built through the real API for the report tests: the world's tree plus a county with no
members, venues, members, and sessions of 2026 held with agents' check-ins and finalized."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.support.client import Client
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.world import World

TZ = ZoneInfo("Asia/Shanghai")
EN = {"Accept-Language": "en"}
REPORT = "/api/v1/reports/monthly"
SPEC = load_spec()


def local(day: str, hh: int, mm: int = 0) -> str:
    """A Shanghai wall-clock time as ISO 8601 with its offset."""
    return f"{day}T{hh:02d}:{mm:02d}:00+08:00"


@dataclass
class City:
    """The world's tree with venues VA (committee a1) and VB (committee b1), a county c with no
    members, and the API as the whole-tree admin."""

    client: Client
    db: Db
    world: World
    tokens: dict[str, str]

    @property
    def admin(self) -> dict[str, str]:
        return {**self.world.auth("admin", "all"), **EN}

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        answer = await self.client.post(path, headers=headers or self.admin, json=body)
        assert answer.status in (200, 201), await answer.text()
        return await answer.json()

    async def member(self, number: str, org: str, category: str = "ordinary") -> None:
        body = {"member_no": number, "name": f"党员{number}", "org_code": org, "category": category}
        await self.post("/api/v1/members", body)

    async def move(self, number: str, org: str) -> None:
        """Move a member to another organization (the CSV import updates a known number)."""
        answer = await self.client.post(
            "/api/v1/members/import",
            headers={**self.admin, "Content-Type": "text/csv"},
            data=f"member_no,name,org_code,category\n{number},党员{number},{org},ordinary\n",
        )
        assert answer.status == 200, await answer.text()
        assert (await answer.json())["updated"] == 1

    async def held(
        self,
        day: str,
        topic: str,
        hours: float,
        main: str,
        roster: list[tuple[str, str]],
        scans: list[tuple[str, str, int]],
        *,
        branches: tuple[str, ...] = (),
        verify: bool = False,
        start: int = 9,
        finish: bool = True,
    ) -> str:
        """A 09:00–12:00 session (unless `start` moves it) whose agents send check-ins
        (member, venue, minutes after the start), then started, ended and finalized."""
        created = await self.post(
            "/api/v1/sessions",
            {
                "title": f"培训班{topic}",
                "topic_code": topic,
                "starts_at": local(day, start),
                "ends_at": local(day, start + 3) if start + 3 < 24 else local(day, 23, 59),
                "credit_hours": hours,
                "main_venue": main,
                "branch_venues": list(branches),
                "policy": {"require_stream_verification": verify},
                "roster": [{"member_no": n, "venue": venue} for n, venue in roster],
            },
        )
        session_id: str = created["id"]
        if not finish:
            return session_id
        base = datetime.fromisoformat(local(day, start))
        for number, venue, minutes in scans:
            event = {
                "event_id": str(uuid.uuid4()),
                "session_id": session_id,
                "member_no": number,
                "kind": "in",
                "at": (base + timedelta(minutes=minutes)).isoformat(),
                "source": "scanner",
            }
            answer = await self.post(
                "/api/v1/agent/checkins",
                {"sent_at": datetime.now(UTC).isoformat(), "events": [event]},
                {"Authorization": f"Bearer {self.tokens[venue]}"},
            )
            assert answer["results"][0]["status"] == "accepted", answer
        for action in ("start", "end", "finalize"):
            await self.post(f"/api/v1/sessions/{session_id}/{action}", None)
        return session_id

    async def report(
        self, org: str, month: str, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return dict(
            await check(
                self.client,
                SPEC,
                "get",
                f"{REPORT}?org={org}&month={month}",
                200,
                headers=headers or self.admin,
            )
        )

    async def attendance(self, session_id: str) -> dict[str, tuple[str, str | None, list[str]]]:
        answer = await self.client.get(
            f"/api/v1/sessions/{session_id}/attendance", headers=self.admin
        )
        body = await answer.json()
        return {m["member_no"]: (m["status"], m["reason"], m["flags"]) for m in body["members"]}


async def build_city(client: Client, db: Db, world: World) -> City:
    """Members A1, A2 (secretary), Z (committee) in branch a1a; A3 directly in committee a1;
    B1 and MV in committee b1; county c with nobody. Sessions, all of 2026:
    J   Jan 15, VA, 3 h: A1 present.
    F   Feb 10, VB, 4 h: MV present, B1 absent (owned by b1).
    M1  Mar 10, VA + branch VB, topic T1, 3 h: A1 present; A2 at VA and at VB (conflict);
        A3 absent; B1 present at VB; MV walks in at VB.
    M2  Mar 20, VA + branch VB, 2 h, stream verified: A1 present at the main venue; B1 at VB,
        whose agent reported no stream → partial/outage.
    M3  Mar 25, VA, topic T1 again, 3 h: A1 and A2 present → repeat, no credit.
    N   Mar 28, VA: scheduled, never held.
    AP  Apr 1 00:00 Shanghai (still March 31 in UTC), VA, 3 h: A1 present."""
    city = City(client, db, world, {})
    await city.post(
        "/api/v1/organizations",
        {"code": "c", "name": "明光市", "level": "county", "parent_code": "city"},
    )
    for code, org in (("VA", "a1"), ("VB", "b1")):
        venue = await city.post(
            "/api/v1/venues", {"code": code, "name": f"会场{code}", "org_code": org}
        )
        city.tokens[code] = venue["token"]
    for number, org, category in (
        ("A1", "a1a", "ordinary"),
        ("A2", "a1a", "secretary"),
        ("Z", "a1a", "committee"),
        ("A3", "a1", "ordinary"),
        ("B1", "b1", "ordinary"),
        ("MV", "b1", "ordinary"),
    ):
        await city.member(number, org, category)
    await city.held("2026-01-15", "TJ", 3, "VA", [("A1", "VA")], [("A1", "VA", 0)])
    await city.held("2026-02-10", "TF", 4, "VB", [("MV", "VB"), ("B1", "VB")], [("MV", "VB", 0)])
    m1 = await city.held(
        "2026-03-10",
        "T1",
        3,
        "VA",
        [("A1", "VA"), ("A2", "VA"), ("A3", "VA"), ("B1", "VB")],
        [("A1", "VA", 0), ("A2", "VA", 0), ("A2", "VB", 5), ("B1", "VB", 0), ("MV", "VB", 0)],
        branches=("VB",),
    )
    m2 = await city.held(
        "2026-03-20",
        "T2",
        2,
        "VA",
        [("A1", "VA"), ("B1", "VB")],
        [("A1", "VA", 0), ("B1", "VB", 0)],
        branches=("VB",),
        verify=True,
    )
    m3 = await city.held(
        "2026-03-25",
        "T1",
        3,
        "VA",
        [("A1", "VA"), ("A2", "VA")],
        [("A1", "VA", 0), ("A2", "VA", 0)],
    )
    await city.held("2026-03-28", "TN", 3, "VA", [("A1", "VA")], [], finish=False)
    await city.held("2026-04-01", "TA", 3, "VA", [("A1", "VA")], [("A1", "VA", 0)], start=0)
    # The results the report counts are the ones finalization wrote.
    assert (await city.attendance(m1)) == {
        "A1": ("present", None, []),
        "A2": ("present", None, ["conflict", "wrong_venue"]),
        "A3": ("absent", "no_checkin", []),
        "B1": ("present", None, []),
        "MV": ("present", None, ["walk_in"]),
    }
    assert (await city.attendance(m2)) == {
        "A1": ("present", None, []),
        "B1": ("partial", "outage", []),
    }
    assert (await city.attendance(m3)) == {
        "A1": ("present", None, ["repeat"]),
        "A2": ("present", None, ["repeat"]),
    }
    return city
