"""The session form as a browser sends it, and the county these form tests schedule in (venues
M, B1, B2 and the worked example's members): shared by the session pages' and roster tests."""

from __future__ import annotations

from typing import Any

from aiohttp import FormData

from tests.support.browser import Browser
from tests.support.sessions import add_venues
from tests.support.world import World

DAY = "2026-11-20"
ROSTER_CSV = "党员编号,会场\nF,B1\nE,B2\n"


async def setup_city(client: Any, world: World) -> dict[str, str]:
    """Venues M (main, county a), B1, B2; the worked example's members in branch a1a; Q1 and Q2
    in a second committee a2 (drawn onto the roster as an organization); X1 in county b."""
    admin = world.auth("admin", "a")
    tokens = await add_venues(client, admin, (("M", "a"), ("B1", "a1"), ("B2", "a1a")))
    answer = await client.post(
        "/api/v1/organizations",
        headers=admin,
        json={"code": "a2", "name": "府城镇党委", "level": "committee", "parent_code": "a"},
    )
    assert answer.status == 201, await answer.text()
    people = [(n, "a1a") for n in ("A", "C", "G", "E", "F", "K")] + [("Q1", "a2"), ("Q2", "a2")]
    for number, org in [*people, ("X1", "b1")]:
        headers = world.auth("admin", "b") if org == "b1" else admin
        body = {"member_no": number, "name": f"党员{number}", "org_code": org}
        answer = await client.post(
            "/api/v1/members", headers=headers, json={**body, "category": "ordinary"}
        )
        assert answer.status == 201, await answer.text()
    return tokens


def session_form(csrf: str, **changes: Any) -> FormData:
    """The session form as a browser sends it (multipart: it carries a file)."""
    values: dict[str, Any] = {
        "title": "年轻干部淬炼成钢能力提升培训",
        "topic_code": "T-2026-01",
        "starts_at": f"{DAY}T09:00",
        "ends_at": f"{DAY}T12:00",
        "credit_hours": "3",
        "main_venue": "M",
        "branch_venues": ["B1", "B2"],
        "other_branches": "",
        "min_ratio_pct": "80",
        "late_grace_min": "10",
        "early_grace_min": "10",
        "stats_interval_s": "60",
        "require_stream_verification": "on",
        "roster_lines": "A B1\nC,B1\n\n# the late ones\nG  B1\n",
        "org_0": "a2",
        "org_venue_0": "M",
        "roster_file": ROSTER_CSV,
        **changes,
    }
    data = FormData()
    data.add_field("csrf_token", csrf)
    for name, value in values.items():
        if value is None:
            continue
        if name == "roster_file":
            data.add_field(name, value.encode(), filename="名单.csv", content_type="text/csv")
        elif isinstance(value, list):
            for item in value:
                data.add_field(name, item)
        else:
            data.add_field(name, value)
    return data


async def post_form(browser: Browser, path: str, data: Any, status: int = 303) -> tuple[str, str]:
    """POST a form; the answer's Location (for a redirect) and text."""
    async with browser.request("POST", path, data=data) as answer:
        text = await answer.text()
        assert answer.status == status, (answer.status, text[:3000])
        return answer.headers.get("Location", ""), text
