"""A month's attendance of a subtree as one export (issue 14, item 9): every member × held
session result, in JSON pages and as CSV and XLSX files in words, on hand-built data; never
outside the caller's subtree."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import load_workbook

from tests.support.openapi_check import load_spec, response_schema, validate_json
from tests.support.sessions import ALL, held_month
from tests.support.world import World


async def _json(client: Any, world: World, query: str, who: str = "reviewer") -> Any:
    answer = await client.get(f"/api/v1/attendance?{query}", headers=world.auth(who, "a"))
    assert answer.status == 200, await answer.text()
    return await answer.json()


async def test_every_result_of_the_month_in_pages(client: Any, world: World) -> None:
    session_id = await held_month(client, world)
    body = await _json(client, world, "org=a&month=2026-11")
    validate_json(body, response_schema(load_spec(), "get", "/api/v1/attendance", 200))
    assert (body["org"], body["month"], body["total"], body["has_next"]) == (
        "a",
        "2026-11",
        6,
        False,
    )
    rows = {row["member_no"]: row for row in body["results"]}
    assert list(rows) == ALL
    assert {row["session_id"] for row in body["results"]} == {session_id}
    got = {
        number: (row["status"], row["reason"], row["credit_hours"], row["flags"])
        for number, row in rows.items()
    }
    assert got == {
        "A": ("partial", "outage", 0, []),
        "C": ("absent", "no_checkin", 0, []),
        "E": ("absent", "no_checkin", 0, []),
        "F": ("absent", "no_checkin", 0, []),
        "G": ("absent", "no_checkin", 0, []),
        "K": ("present", None, 3, ["walk_in"]),
    }
    assert rows["C"]["assigned_venue"] == "会场B1" and rows["K"]["assigned_venue"] is None
    assert rows["A"]["org_name"] == "西泉村党支部" and rows["A"]["title"] == "年轻干部淬炼成钢"
    # Pages walk every row once; a branch's subtree holds the same members; other months none.
    first = await _json(client, world, "org=a&month=2026-11&per_page=4")
    second = await _json(client, world, "org=a&month=2026-11&per_page=4&page=2")
    assert first["has_next"] and not second["has_next"]
    walked = [row["member_no"] for row in first["results"] + second["results"]]
    assert walked == ALL
    assert (await _json(client, world, "org=a1a&month=2026-11"))["total"] == 6
    assert (await _json(client, world, "org=a1a&month=2026-10"))["total"] == 0


async def test_the_files_say_it_in_words(client: Any, world: World) -> None:
    session_id = await held_month(client, world)
    reviewer = world.auth("reviewer", "a")
    answer = await client.get("/api/v1/attendance.csv?org=a&month=2026-11", headers=reviewer)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert "filename*=UTF-8''" in answer.headers["Content-Disposition"]
    raw = await answer.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0][:3] == ["党员编号", "姓名", "所在组织"] and lines[0][-1] == "场次编号"
    assert [line[0] for line in lines[1:]] == ALL
    by_member = {line[0]: line for line in lines[1:]}
    assert by_member["A"] == [
        "A",
        "党员A",
        "西泉村党支部",
        "2026-11-20",
        "年轻干部淬炼成钢",
        "会场B1",
        "部分出勤",
        "直播中断",
        "0",
        "0",
        "",
        session_id,
    ]
    assert by_member["K"][6] == "出勤" and by_member["K"][10] == "临时参训"
    assert "outage" not in raw.decode("utf-8-sig") and "a1a" not in raw.decode("utf-8-sig")

    answer = await client.get("/api/v1/attendance.xlsx?org=a&month=2026-11", headers=reviewer)
    assert answer.status == 200
    sheet = load_workbook(io.BytesIO(await answer.read())).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "党员编号" and [row[0] for row in values[1:]] == ALL
    assert values[1][2] == "西泉村党支部" and values[6][9] == 3


async def test_never_outside_the_subtree_and_bad_queries_are_named(
    client: Any, world: World
) -> None:
    await held_month(client, world)
    for path in ("/api/v1/attendance", "/api/v1/attendance.csv", "/api/v1/attendance.xlsx"):
        other = await client.get(f"{path}?org=a&month=2026-11", headers=world.auth("admin", "b"))
        assert other.status == 404, path  # county b does not see county a's organizations
        future = await client.get(f"{path}?org=a&month=2099-01", headers=world.auth("admin", "a"))
        assert future.status == 422 and "month" in (await future.json())["error"]["fields"]
    missing = await client.get("/api/v1/attendance?month=2026-11", headers=world.auth("admin"))
    assert missing.status == 422 and "org" in (await missing.json())["error"]["fields"]
    staff = await client.get(
        "/api/v1/attendance?org=a&month=2026-11", headers=world.auth("venue_staff", "a")
    )
    assert staff.status == 403
