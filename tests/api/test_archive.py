"""The training archive (培训档案) on hand-built data: sessions checked into and finalized through
the real API; the registration form (培训登记表) lists exactly the credited sessions of its year;
the committee cabinet (一党委一专柜) and its two exports show the same figures as its JSON; bad
years refused; outsiders answered as for what does not exist."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.archive import (
    ArchiveLine,
    cabinet_summary,
    completeness_pct,
    member_state,
)
from server.domain.times import parse_year, year_of
from server.services.clock import utcnow
from tests.support.browser import Browser, give_password
from tests.support.openapi_check import check
from tests.support.report_city import EN, SPEC, TZ, City
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
ROW = re.compile(r'<tr data-member="([^"]+)">(.*?)</tr>', re.DOTALL)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
FIGURE = re.compile(r'data-figure="(\w+)">\s*<span class="stat-value">([^<]*)</span>', re.DOTALL)
SESSION_ROW = re.compile(r'<tr data-session="([^"]+)">')

# --- the pure rules ---------------------------------------------------------------------------


def test_completeness_is_capped_and_rounded_half_up() -> None:
    assert completeness_pct(Decimal(28), Decimal(32)) == Decimal("87.5")
    assert completeness_pct(Decimal("4.25"), Decimal(56)) == Decimal("7.6")  # 7.589…
    assert completeness_pct(Decimal("1.75"), Decimal(32)) == Decimal("5.5")  # 5.46875
    assert completeness_pct(Decimal(1), Decimal(16)) == Decimal("6.3")  # 6.25: half up
    assert completeness_pct(Decimal("32.5"), Decimal(32)) == Decimal("100.0")  # not 101.6
    assert completeness_pct(Decimal(0), Decimal(32)) == Decimal("0.0")
    assert completeness_pct(Decimal(0), Decimal(0)) == Decimal("100.0")


def test_states_and_summary() -> None:
    assert member_state(Decimal(32), Decimal(32)) == "complete"
    assert member_state(Decimal("31.99"), Decimal(32)) == "incomplete"
    assert member_state(Decimal("0.01"), Decimal(32)) == "incomplete"
    assert member_state(Decimal(0), Decimal(32)) == "untrained"

    def line(earned: str, required: int) -> ArchiveLine:
        return ArchiveLine("n", "n", "o", "o", "ordinary", Decimal(required), Decimal(earned))

    summary = cabinet_summary([line("40", 32), line("8", 32), line("0", 56)])
    # 32 (40 counts up to 32) + 8 + 0 of 120 = 33.3 %
    assert (summary.members_total, summary.complete, summary.incomplete, summary.untrained) == (
        3,
        1,
        1,
        1,
    )
    assert summary.overall_pct == Decimal("33.3")
    assert cabinet_summary([]).overall_pct == Decimal("0.0")


@pytest.mark.parametrize(
    ("raw", "year"),
    [
        ("2026", 2026),
        ("2000", 2000),
        ("2099", 2099),
        ("1999", None),
        ("2100", None),  # vocabulary's LAST_YEAR is 2099
        ("026", None),
        ("20260", None),
        ("abcd", None),
        ("２０２６", None),  # full-width digits are no year
        ("", None),
    ],
)
def test_years(raw: str, year: int | None) -> None:
    assert parse_year(raw) == year


# --- a committee built through the API ---------------------------------------------------------


async def build_committee(client: Any, db: Db, world: World) -> tuple[City, dict[str, str]]:
    """Committee a1 with branches a1a (X1, X2 secretary, X3) and a1b (W1, W2 committee member);
    Y1 in committee b1 (the other subtree). Sessions at venue VA (a1):
    S0  2025-12-31 20:00, 4 h: X2 present (a credit of 2025).
    S1  2026-01-01 00:00 Shanghai (still 2025 in UTC), 30 h: X1 present.
    S2  2026-03-10, 2.5 h: X1, X2 present; X3 on the roster, absent.
    S3  2026-06-05, 1.75 h: X2, W1 present."""
    city = City(client, db, world, {})
    await city.post(
        "/api/v1/organizations",
        {"code": "a1b", "name": "西泉二村党支部", "level": "branch", "parent_code": "a1"},
    )
    venue = await city.post("/api/v1/venues", {"code": "VA", "name": "西泉会场", "org_code": "a1"})
    city.tokens["VA"] = venue["token"]
    for number, org, category in (
        ("X1", "a1a", "ordinary"),
        ("X2", "a1a", "secretary"),
        ("X3", "a1a", "ordinary"),
        ("W1", "a1b", "ordinary"),
        ("W2", "a1b", "committee"),
        ("Y1", "b1", "ordinary"),
    ):
        await city.member(number, org, category)
    sessions = {
        "S0": await city.held(
            "2025-12-31", "T0", 4, "VA", [("X2", "VA")], [("X2", "VA", 0)], start=20
        ),
        "S1": await city.held(
            "2026-01-01", "T1", 30, "VA", [("X1", "VA")], [("X1", "VA", 0)], start=0
        ),
        "S2": await city.held(
            "2026-03-10",
            "T2",
            2.5,
            "VA",
            [("X1", "VA"), ("X2", "VA"), ("X3", "VA")],
            [("X1", "VA", 0), ("X2", "VA", 0)],
        ),
        "S3": await city.held(
            "2026-06-05",
            "T3",
            1.75,
            "VA",
            [("X2", "VA"), ("W1", "VA")],
            [("X2", "VA", 0), ("W1", "VA", 0)],
        ),
    }
    assert (await city.attendance(sessions["S2"]))["X3"] == ("absent", "no_checkin", [])
    return city, sessions


def member(
    number: str, org: str, category: str, required: int, earned: float, pct: float, state: str
) -> dict[str, Any]:
    org_name = {"a1a": "西泉村党支部", "a1b": "西泉二村党支部"}[org]
    return {
        "member_no": number,
        "name": f"党员{number}",
        "org_code": org,
        "org_name": org_name,
        "category": category,
        "required_hours": required,
        "earned_hours": earned,
        "completeness_pct": pct,
        "state": state,
    }


# By branch (a1a, then a1b), then member number: W1, W2 come after the X's.
CABINET_2026: dict[str, Any] = {
    "org": "a1",
    "year": 2026,
    "members_total": 5,
    "complete": 1,
    "incomplete": 2,
    "untrained": 2,
    "members": [
        member("X1", "a1a", "ordinary", 32, 32.5, 100.0, "complete"),  # 30 + 2.5
        member("X2", "a1a", "secretary", 56, 4.25, 7.6, "incomplete"),  # 2.5 + 1.75, not S0
        member("X3", "a1a", "ordinary", 32, 0, 0.0, "untrained"),
        member("W1", "a1b", "ordinary", 32, 1.75, 5.5, "incomplete"),
        member("W2", "a1b", "committee", 56, 0, 0.0, "untrained"),
    ],
}
# 32 (X1 up to the requirement) + 4.25 + 1.75 of 32 + 56 + 32 + 32 + 56 = 38 / 208
OVERALL_2026 = "18.3%"


async def page(browser: Browser, path: str, status: int = 200) -> str:
    async with browser.request("GET", path) as response:
        html: str = await response.text()
        assert response.status == status, (response.status, html[:800])
    return html


def rows(html: str) -> list[tuple[str, list[str]]]:
    """The cabinet's member rows: number, and the cells as text."""
    return [
        (number, [TAG.sub("", cell).strip() for cell in CELL.findall(body)])
        for number, body in ROW.findall(html)
    ]


async def test_the_cabinet_in_json_page_and_both_exports(client: Any, db: Db, world: World) -> None:
    city, _ = await build_committee(client, db, world)
    cabinet = await check(
        client, SPEC, "get", "/api/v1/organizations/a1/cabinet?year=2026", 200, headers=city.admin
    )
    assert cabinet == CABINET_2026
    # The current year (in Shanghai) is the default; a branch holds its own members; 2025 S0.
    current = year_of(utcnow(), TZ)
    default = await check(
        client, SPEC, "get", "/api/v1/organizations/a1/cabinet", 200, headers=city.admin
    )
    assert default["year"] == current
    assert default == await check(
        client,
        SPEC,
        "get",
        f"/api/v1/organizations/a1/cabinet?year={current}",
        200,
        headers=city.admin,
    )
    branch = await check(
        client, SPEC, "get", "/api/v1/organizations/a1b/cabinet?year=2026", 200, headers=city.admin
    )
    assert [m["member_no"] for m in branch["members"]] == ["W1", "W2"]
    earlier = await check(
        client, SPEC, "get", "/api/v1/organizations/a1/cabinet?year=2025", 200, headers=city.admin
    )
    assert [(m["member_no"], m["earned_hours"], m["state"]) for m in earlier["members"]] == [
        ("X1", 0, "untrained"),
        ("X2", 4, "incomplete"),
        ("X3", 0, "untrained"),
        ("W1", 0, "untrained"),
        ("W2", 0, "untrained"),
    ]
    # A reviewer of county a sees the same.
    scoped = await check(
        client,
        SPEC,
        "get",
        "/api/v1/organizations/a1/cabinet?year=2026",
        200,
        headers={**world.auth("reviewer", "a"), **EN},
    )
    assert scoped == CABINET_2026

    await give_password(db, "reviewer-a")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-a")
        html = await page(browser, "/organizations/a1/cabinet?year=2026")
        assert dict(FIGURE.findall(html)) == {
            "members_total": "5",
            "complete": "1",
            "incomplete": "2",
            "untrained": "2",
            "overall_pct": OVERALL_2026,
        }
        assert rows(html) == [
            ("X1", ["西泉村党支部", "X1", "党员X1", "普通党员", "32.5", "32", "100.0%", "完成"]),
            ("X2", ["西泉村党支部", "X2", "党员X2", "党组织书记", "4.25", "56", "7.6%", "未完成"]),
            ("X3", ["西泉村党支部", "X3", "党员X3", "普通党员", "0", "32", "0.0%", "未参训"]),
            ("W1", ["西泉二村党支部", "W1", "党员W1", "普通党员", "1.75", "32", "5.5%", "未完成"]),
            ("W2", ["西泉二村党支部", "W2", "党员W2", "班子成员", "0", "56", "0.0%", "未参训"]),
        ]
        for number in ("X1", "X2", "X3", "W1", "W2"):
            assert f'href="/members/{number}/archive/2026"' in html
        assert 'href="/organizations/a1/cabinet.xlsx?year=2026"' in html
        assert 'href="/organizations/a1/cabinet.csv?year=2026"' in html
        assert "Y1" not in html and "铜城镇党委" not in html
        # The organization tree links the cabinet of each committee, not of a branch.
        tree = await page(browser, "/organizations")
        assert 'href="/organizations/a1/cabinet"' in tree
        assert 'href="/organizations/a1a/cabinet"' not in tree

        async with browser.request("GET", "/organizations/a1/cabinet.csv?year=2026") as response:
            assert response.status == 200
            assert response.content_type == "text/csv"
            assert "cabinet-a1-2026.csv" in response.headers["Content-Disposition"]
            text = (await response.read()).decode("utf-8")
        async with browser.request("GET", "/organizations/a1/cabinet.xlsx?year=2026") as response:
            assert response.status == 200
            assert response.content_type.endswith("spreadsheetml.sheet")
            body = await response.read()
    headings = ["党员编号", "姓名", "组织代码", "组织名称", "类别", "应修学时", "已修学时"]
    headings += ["完成率（%）", "完成情况"]

    def expected(item: dict[str, Any], category: str, state: str) -> list[str]:
        return [
            item["member_no"],
            item["name"],
            item["org_code"],
            item["org_name"],
            category,
            str(item["required_hours"]),
            str(item["earned_hours"]),
            str(item["completeness_pct"]),
            state,
        ]

    words = {
        "ordinary": "普通党员",
        "secretary": "党组织书记",
        "committee": "班子成员",
        "complete": "完成",
        "incomplete": "未完成",
        "untrained": "未参训",
    }
    lines = [
        expected(item, words[item["category"]], words[item["state"]])
        for item in CABINET_2026["members"]
    ]
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table == [headings, *lines]
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert cells[0] == headings
    # Hours and percentages are numbers in the workbook (100.0 reads back as 100).
    assert all(isinstance(value, int | float) for row in cells[1:] for value in row[5:8])
    assert [[*row[:5], *(float(v) for v in row[5:8]), row[8]] for row in cells[1:]] == [
        [*line[:5], *(float(v) for v in line[5:8]), line[8]] for line in lines
    ]


async def test_the_registration_form_lists_exactly_the_credited_sessions(
    client: Any, db: Db, world: World
) -> None:
    city, sessions = await build_committee(client, db, world)

    async def form(number: str, year: int) -> dict[str, Any]:
        path = f"/api/v1/members/{number}/archive?year={year}"
        return dict(await check(client, SPEC, "get", path, 200, headers=city.admin))

    x2 = await form("X2", 2026)
    assert {key: value for key, value in x2.items() if key != "entries"} == {
        "member_no": "X2",
        "name": "党员X2",
        "org_code": "a1a",
        "org_name": "西泉村党支部",
        "org_path": ["滁州市", "凤阳县", "西泉镇党委", "西泉村党支部"],
        "category": "secretary",
        "year": 2026,
        "required_hours": 56,
        "earned_hours": 4.25,
        "completeness_pct": 7.6,
        "state": "incomplete",
    }
    assert [(e["session_id"], e["credit_hours"], e["venue"]) for e in x2["entries"]] == [
        (sessions["S2"], 2.5, "VA"),
        (sessions["S3"], 1.75, "VA"),
    ]
    assert x2["entries"][0]["title"] == "培训班T2" and x2["entries"][0]["topic_code"] == "T2"
    x2_2025 = await form("X2", 2025)
    assert [e["session_id"] for e in x2_2025["entries"]] == [sessions["S0"]]
    assert x2_2025["earned_hours"] == 4
    x3 = await form("X3", 2026)  # on S2's roster, absent: in the record, not on the form
    assert (x3["entries"], x3["earned_hours"], x3["state"]) == ([], 0, "untrained")
    record = await client.get("/api/v1/members/X3/record?year=2026", headers=city.admin)
    assert [e["status"] for e in (await record.json())["entries"]] == ["absent"]
    x1 = await form("X1", 2026)
    assert (x1["earned_hours"], x1["completeness_pct"], x1["state"]) == (32.5, 100.0, "complete")
    assert [e["session_id"] for e in x1["entries"]] == [sessions["S1"], sessions["S2"]]

    await give_password(db, "operator-a")
    async with Browser(client) as browser:
        await browser.signed_in("operator-a")
        html = await page(browser, "/members/X2/archive/2026")
        assert SESSION_ROW.findall(html) == [sessions["S2"], sessions["S3"]]
        assert "滁州市 › 凤阳县 › 西泉镇党委 › 西泉村党支部" in html
        assert "已修 4.25 / 应修 56 学时, 完成 7.6%" in html
        assert "党员培训登记表" in html and "2026 年度" in html and "党组织书记" in html
        assert "培训班T3" in html and "培训班T0" not in html
        assert "西泉会场" in html  # the venue by its name, as the form is read
        assert "本人签名" in html and "盖章" in html
        assert "archive.css" in html and "print.js" in html
        assert 'href="/members/X2?year=2026"' in html  # back to the member
        # S1 started on January 1 in Shanghai (December 31 in UTC): dated as in Shanghai.
        x1_html = await page(browser, "/members/X1/archive/2026")
        assert "2026-01-01" in x1_html and "2025-12-31" not in x1_html
        assert "已修 32.50 / 应修 32 学时, 完成 100.0%" in x1_html
        empty = await page(browser, "/members/X3/archive/2026")
        assert SESSION_ROW.findall(empty) == [] and "2026 年度没有计入学时的培训。" in empty
        # The member page links the form of the year it shows.
        member_page = await page(browser, "/members/X2?year=2025")
        assert 'href="/members/X2/archive/2025"' in member_page


async def test_bad_years_are_refused(client: Any, db: Db, world: World) -> None:
    city, _ = await build_committee(client, db, world)
    for year in ("1999", "2101", "20260", "26", "abcd", "2026x"):
        answer = await client.get(f"/api/v1/members/X1/archive?year={year}", headers=city.admin)
        assert answer.status == 422, year
        error = (await answer.json())["error"]
        assert error["code"] == "invalid" and "year" in error["fields"]
        await check(
            client,
            SPEC,
            "get",
            f"/api/v1/organizations/a1/cabinet?year={year}",
            422,
            headers=city.admin,
        )
    await give_password(db, "reviewer-a")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-a")
        for year in (
            "1999",
            "2101",
            "20260",
            "026",
            "abcd",
            "%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96",
        ):
            await page(browser, f"/members/X1/archive/{year}", 404)
        await page(browser, "/members/X1/archive/", 404)
        html = await page(browser, "/organizations/a1/cabinet?year=1999", 422)
        assert "year" in html
        await page(browser, "/organizations/a1/cabinet.csv?year=abc", 422)
        await page(browser, "/organizations/a1/cabinet.xlsx?year=abc", 422)


async def test_outsiders_see_nothing(client: Any, db: Db, world: World) -> None:
    await build_committee(client, db, world)
    b = {**world.auth("reviewer", "b"), **EN}
    for known, unknown in (
        ("/api/v1/members/X1/archive?year=2026", "/api/v1/members/NOPE/archive?year=2026"),
        (
            "/api/v1/organizations/a1/cabinet?year=2026",
            "/api/v1/organizations/zz/cabinet?year=2026",
        ),
    ):
        outside = await check(client, SPEC, "get", known, 404, headers=b)
        nobody = await check(client, SPEC, "get", unknown, 404, headers=b)
        assert outside["error"]["code"] == nobody["error"]["code"] == "not_found"
    # b's own committee works for b, and holds only Y1.
    own = await check(
        client, SPEC, "get", "/api/v1/organizations/b1/cabinet?year=2026", 200, headers=b
    )
    assert [m["member_no"] for m in own["members"]] == ["Y1"]
    # Venue staff may not read archives; nobody signed in is told to sign in.
    staff = {**world.auth("venue_staff", "a"), **EN}
    await check(client, SPEC, "get", "/api/v1/organizations/a1/cabinet", 403, headers=staff)
    await check(client, SPEC, "get", "/api/v1/members/X1/archive", 403, headers=staff)
    await check(client, SPEC, "get", "/api/v1/members/X1/archive", 401)
    await give_password(db, "reviewer-b")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-b")
        outside = await page(browser, "/members/X1/archive/2026", 404)
        unknown = await page(browser, "/members/ZZ/archive/2026", 404)
        assert outside.replace("X1", "ZZ") == unknown
        assert "西泉" not in outside
        cabinet = await page(browser, "/organizations/a1/cabinet", 404)
        assert "西泉" not in cabinet and "X1" not in cabinet
        await page(browser, "/organizations/a1/cabinet.csv", 404)
        await page(browser, "/organizations/a1/cabinet.xlsx", 404)
