"""Building a bench city through the real CLI and JSON API: organizations, members, venues and
one session with every venue and a roster."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from bench.common import hetang


@dataclass(frozen=True)
class BenchCity:
    """What a benchmark needs to drive the server."""

    base: str
    admin_token: str
    venue_tokens: dict[str, str]
    session_id: str
    member_nos: list[str]


async def build_city(
    base: str,
    env: dict[str, str],
    directory: Path,
    *,
    venues: int,
    members: int,
    starts_at: datetime,
    hours: int = 3,
) -> BenchCity:
    """One county with a committee per venue, members spread over them, one joint session."""
    token = hetang(env, "token", "create", "bench").strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:

        async def post(path: str, body: object) -> dict[str, object]:
            async with http.post(path, json=body) as response:
                answer: dict[str, object] = await response.json()
                if response.status not in (200, 201):
                    raise SystemExit(f"{path}: {answer}")
                return answer

        await post(
            "/api/v1/organizations",
            {"code": "city", "name": "滁州市", "level": "city", "parent_code": None},
        )
        tokens: dict[str, str] = {}
        for index in range(venues):
            await post(
                "/api/v1/organizations",
                {
                    "code": f"c{index}",
                    "name": f"第{index}镇党委",
                    "level": "committee",
                    "parent_code": "city",
                },
            )
            venue = await post(
                "/api/v1/venues",
                {"code": f"v{index}", "name": f"第{index}会场", "org_code": f"c{index}"},
            )
            tokens[f"v{index}"] = str(venue["token"])
        path = directory / "members.csv"
        numbers = [f"M{index:07d}" for index in range(members)]
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["member_no", "name", "org_code", "category", "card_code"])
            for index, number in enumerate(numbers):
                writer.writerow(
                    [number, f"党员{index}", f"c{index % venues}", "ordinary", f"K{index:07d}"]
                )
        hetang(env, "members", "import", str(path))
        session = await post(
            "/api/v1/sessions",
            {
                "title": "基准测试合堂培训",
                "topic_code": "BENCH",
                "credit_hours": hours,
                "starts_at": starts_at.isoformat(),
                "ends_at": (starts_at + timedelta(hours=hours)).isoformat(),
                "main_venue": "v0",
                "branch_venues": [f"v{i}" for i in range(1, venues)],
                "roster": [
                    {"member_no": number, "venue": f"v{index % venues}"}
                    for index, number in enumerate(numbers)
                ],
            },
        )
    return BenchCity(base, token, tokens, str(session["id"]), numbers)
