"""The city a fleet of simulated agents works in: one committee, members, a venue per agent
(each with its agent token) and sessions on now, each with up to 1,000 branch venues (the most
a session takes). Made through the real API as the whole tree's admin, a few requests at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from tools.fleet import AgentPlan

MEMBERS = 50
BRANCHES_PER_SESSION = 1000
AT_ONCE = 16


async def build_fleet_city(server: str, admin_token: str, agents: int) -> list[AgentPlan]:
    """One plan per agent: its venue's token, its session, the members it scans."""
    tag = uuid.uuid4().hex[:6]
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession(server, headers=headers) as http:

        async def post(path: str, body: Any) -> Any:
            async with http.post("/api/v1/" + path, json=body) as answer:
                if answer.status not in (200, 201):
                    raise RuntimeError(f"POST {path}: {answer.status} {await answer.text()}")
                return await answer.json()

        org = f"fleet-{tag}"
        await post(
            "organizations", {"code": org, "name": "舰队市委", "level": "city", "parent_code": None}
        )
        members = tuple(f"{tag}-M{n}" for n in range(MEMBERS))
        gate = asyncio.Semaphore(AT_ONCE)

        async def member(number: str) -> None:
            async with gate:
                body = {"member_no": number, "name": f"党员{number[-3:]}", "org_code": org}
                await post("members", {**body, "category": "ordinary"})

        async def venue(code: str) -> str:
            async with gate:
                made = await post(
                    "venues", {"code": code, "name": f"分会场{code}", "org_code": org}
                )
                return str(made["token"])

        await asyncio.gather(*(member(number) for number in members))
        codes = [f"{tag}-V{n:05d}" for n in range(agents)]
        tokens = await asyncio.gather(*(venue(code) for code in codes))
        plans = []
        now = datetime.now(UTC)
        for start in range(0, agents, BRANCHES_PER_SESSION):
            group = codes[start : start + BRANCHES_PER_SESSION]
            main = f"{tag}-MAIN{start}"
            await post("venues", {"code": main, "name": "主会场", "org_code": org})
            session = await post(
                "sessions",
                {
                    "title": "全省党员冬训视频会议",
                    "topic_code": f"FLEET-{tag}-{start}",
                    "starts_at": (now - timedelta(minutes=10)).isoformat(),
                    "ends_at": (now + timedelta(hours=3)).isoformat(),
                    "credit_hours": 2,
                    "main_venue": main,
                    "branch_venues": group,
                },
            )
            plans += [
                AgentPlan(tokens[start + n], session["id"], members) for n in range(len(group))
            ]
    return plans
