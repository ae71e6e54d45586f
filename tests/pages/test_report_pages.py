"""The monthly report page (月报告): the figures of hand-built data as the API computes them, the
three SVG charts, the XLSX export with the same numbers, empty organizations, the stored
versions and their button, and bad input answered with the error page."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEntry, ReportSnapshot
from server.db.session import read_session
from server.domain.charts import Bar, columns, horizontal_bars
from server.domain.reports import month_of
from server.pages.report_export import REPORT_COLUMN_LABELS
from tests.support.browser import Browser, give_password
from tests.support.report_city import build_city
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
TZ = ZoneInfo("Asia/Shanghai")
SVG = "{http://www.w3.org/2000/svg}"
PAGE = "/reports/monthly"
XLSX = "/reports/monthly.xlsx"
SNAPSHOTS = "/reports/monthly/snapshots"
FIGURE = re.compile(r'data-figure="(\w+)">\s*<span class="stat-value">([^<]*)</span>', re.DOTALL)
CELL = re.compile(r'<td class="num">([^<]*)</td>')
SVG_BLOCK = re.compile(r"<svg .*?</svg>", re.DOTALL)
# The figures cards in the order of the API's keys (runs are shown as "held / planned").
CARD_KEYS = (
    "members_total",
    "sessions_held",
    "person_times",
    "members_trained_month",
    "members_trained_ytd",
    "coverage_ytd_pct",
    "untrained_ytd",
    "below_requirement",
    "repeat_blocked",
    "partial_outage",
    "conflicts",
)
NUMERIC_COLUMNS = [key for key in REPORT_COLUMN_LABELS if key not in ("org", "name", "month")]


async def page(browser: Browser, path: str, status: int = 200) -> str:
    async with browser.request("GET", path) as response:
        html: str = await response.text()
        assert response.status == status, (response.status, html[:800])
    return html


def figures_of(html: str) -> dict[str, str]:
    return dict(FIGURE.findall(html))


def row_cells(html: str, org: str) -> list[str]:
    found = re.search(rf'<tr data-org="{re.escape(org)}">(.*?)</tr>', html, re.DOTALL)
    assert found, f"no row of {org}"
    return CELL.findall(found.group(1))


def api_cells(report: dict[str, Any]) -> list[str]:
    """A report of the API written as the page's table writes it."""
    values = {
        **report,
        "runs_planned": report["plan_progress"]["runs_planned"],
        "runs_held": report["plan_progress"]["runs_held"],
    }
    return [str(values[key]) for key in NUMERIC_COLUMNS]


def parse(svg: str) -> ET.Element:
    """An SVG of ours, parsed strictly (which fails on malformed markup)."""
    return ET.fromstring(svg)  # noqa: S314 - our own server's output, not untrusted data


def charts(html: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed."""
    return [parse(block) for block in SVG_BLOCK.findall(html)]


def bars(svg: ET.Element) -> list[ET.Element]:
    return [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == "chart-bar"]


def values(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-value"]


async def stored(db: Db) -> tuple[list[tuple[str, int, str]], int]:
    """(month, version, who) of every stored report, and the audit entries."""
    async with read_session(db) as session:
        rows = (
            await session.execute(
                select(
                    ReportSnapshot.month, ReportSnapshot.version, ReportSnapshot.generated_by
                ).order_by(ReportSnapshot.id)
            )
        ).all()
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    return [(month, version, who) for month, version, who in rows], int(audited or 0)


async def test_the_page_and_the_workbook_show_the_apis_figures(
    client: Any, db: Db, world: World
) -> None:
    city = await build_city(client, db, world)
    await city.move("MV", "a1a")
    whole = await city.report("city", "2026-03")
    await give_password(db, "root")
    async with Browser(client) as browser:
        await browser.signed_in("root")
        html = await page(browser, f"{PAGE}?org=city&month=2026-03")
        # Figures of the whole subtree, as the API computes them.
        shown = figures_of(html)
        assert {key: shown[key] for key in CARD_KEYS} == {
            key: str(whole[key]) + ("%" if key == "coverage_ytd_pct" else "") for key in CARD_KEYS
        }
        assert shown["runs_held"] == "3 / 0"
        assert shown["members_total"] == "6" and shown["coverage_ytd_pct"] == "66.7%"
        assert "人员按当前所在组织统计" in html
        # One line per child organization, each linking to its own report, and the total.
        for child in whole["children"]:
            assert row_cells(html, child["org"]) == api_cells(child)
            assert f'href="/reports/monthly?org={child["org"]}&amp;month=2026-03"' in html
        assert row_cells(html, "city") == api_cells(whole)
        # The picker offers the caller's organizations; the snapshot button is there.
        assert '<option value="c"' in html and 'action="/reports/monthly/snapshots"' in html
        # Three charts, well-formed: coverage of a, b, c; January..March; six hours bins.
        coverage, trend, hours = charts(html)
        assert [v for v in values(coverage)] == ["60.0%", "100.0%", "0.0%"]
        assert len(bars(coverage)) == 3
        monthly = [
            (await city.report("city", month))["members_trained_month"]
            for month in ("2026-01", "2026-02", "2026-03")
        ]
        assert values(trend) == [str(n) for n in monthly] == ["1", "1", "4"]
        # Through March: Z and A3 none; A2 3, B1 3, MV 7 (<8); A1 exactly 8 (8–16).
        assert values(hours) == ["2", "3", "1", "0", "0", "0"]
        labels = [t.text for t in hours.iter(f"{SVG}text") if t.get("class") == "chart-label"]
        assert labels == ["0", "<8", "8–16", "16–32", "32–56", "≥56"]
        assert sum(int(v) for v in values(hours)) == whole["members_total"]
        # A child's own page: its figures, its one child.
        a_html = await page(browser, f"{PAGE}?org=a&month=2026-03")
        assert figures_of(a_html)["members_total"] == "5"
        a_alone = await city.report("a", "2026-03")
        assert row_cells(a_html, "a1") == api_cells(a_alone["children"][0])

        # The workbook: the organization and its children, Chinese headings, same numbers.
        async with browser.request("GET", f"{XLSX}?org=city&month=2026-03") as response:
            assert response.status == 200
            assert response.content_type.endswith("spreadsheetml.sheet")
            assert "report-city-2026-03.xlsx" in response.headers["Content-Disposition"]
            body = await response.read()
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["本组织", "下级组织"]
    own, children = book["本组织"], book["下级组织"]
    headings = [cell.value for cell in own[1]]
    assert headings[:4] == ["组织代码", "组织名称", "月份", "党员人数"]
    assert "本年培训覆盖率（%）" in headings

    def numbers(row: tuple[Any, ...]) -> list[float]:
        assert all(isinstance(cell.value, int | float) for cell in row[3:])
        return [float(cell.value) for cell in row[3:]]

    def expected(report: dict[str, Any]) -> list[float]:
        return [float(text) for text in api_cells(report)]

    assert [own.cell(2, 1).value, own.cell(2, 2).value, own.cell(2, 3).value] == [
        "city",
        "滁州市",
        "2026-03",
    ]
    assert numbers(own[2]) == expected(whole)
    assert [row[0].value for row in children.iter_rows(min_row=2)] == ["a", "b", "c"]
    for row, child in zip(children.iter_rows(min_row=2), whole["children"], strict=True):
        assert numbers(row) == expected(child)


async def test_an_empty_organization_renders_its_empty_states(
    client: Any, db: Db, world: World
) -> None:
    await give_password(db, "reviewer-a")
    async with Browser(client) as browser:
        await browser.signed_in("reviewer-a")
        html = await page(browser, f"{PAGE}?org=a1a&month=2026-03")
        assert figures_of(html)["members_total"] == "0"
        assert figures_of(html)["coverage_ytd_pct"] == "0.0%"
        empty_states = ("该组织没有下级组织。", "本年度尚无人参训。", "该组织没有党员。")
        for text in (*empty_states, "本月报告尚未保存。"):
            assert text in html, text
        found = charts(html)
        assert len(found) == 3
        assert all(not bars(svg) or all(b.get("height") == "0" for b in bars(svg)) for svg in found)
        # A reviewer reads, but has no button to store a report.
        assert 'action="/reports/monthly/snapshots"' not in html
        # The workbook of an empty organization: its line of zeros, no children.
        async with browser.request("GET", f"{XLSX}?org=a1a&month=2026-03") as response:
            assert response.status == 200
            book = load_workbook(io.BytesIO(await response.read()))
        assert [c.value for c in book["本组织"][2]][3:6] == [0, 0, 0]
        assert book["下级组织"].max_row == 1


async def test_defaults_are_the_callers_organization_and_last_month(
    client: Any, db: Db, world: World
) -> None:
    last = month_of(datetime.now(UTC), TZ).previous().label
    await give_password(db, "reviewer-a", "root")
    async with Browser(client) as reviewer, Browser(client) as root:
        await reviewer.signed_in("reviewer-a")
        html = await page(reviewer, PAGE)
        assert f'name="month" value="{last}"' in html
        assert '<tr data-org="a1">' in html and "凤阳县" in html
        # Only the caller's subtree can be picked.
        assert '<option value="a"' in html and '<option value="b"' not in html
        await root.signed_in("root")
        html = await page(root, PAGE)
        assert '<tr data-org="a">' in html and '<tr data-org="b">' in html
        # The navigation leads here.
        assert 'href="/reports/monthly"' in html


async def test_storing_a_report_keeps_versions(client: Any, db: Db, world: World) -> None:
    await give_password(db, "operator-a", "reviewer-a", "operator-b")
    query = {"org": "a", "month": "2026-03"}
    async with (
        Browser(client) as operator,
        Browser(client) as reviewer,
        Browser(client) as other,
    ):
        csrf = await operator.signed_in("operator-a")
        html = await page(operator, f"{PAGE}?org=a&month=2026-03")
        assert "生成并保存本月报告" in html
        for version in (1, 2):
            async with operator.request(
                "POST", SNAPSHOTS, data={**query, "csrf_token": csrf}
            ) as response:
                assert response.status == 303, await response.text()
                assert response.headers["Location"] == (
                    f"/reports/monthly?org=a&month=2026-03&saved={version}"
                )
        rows, audited = await stored(db)
        assert rows == [("2026-03", 1, "user:operator-a"), ("2026-03", 2, "user:operator-a")]
        html = await page(operator, f"{PAGE}?org=a&month=2026-03&saved=2")
        assert "已保存第 2 版报告。" in html
        assert '<tr data-version="2">' in html and '<tr data-version="1">' in html
        assert html.index('data-version="2"') < html.index('data-version="1"')
        assert "user:operator-a" in html
        # Without the CSRF field nothing is stored.
        async with operator.request("POST", SNAPSHOTS, data=query) as response:
            assert response.status == 403
        # A reviewer may not store; an operator of another county sees no such organization.
        reviewer_csrf = await reviewer.signed_in("reviewer-a")
        async with reviewer.request(
            "POST", SNAPSHOTS, data={**query, "csrf_token": reviewer_csrf}
        ) as response:
            assert response.status == 403
        other_csrf = await other.signed_in("operator-b")
        async with other.request(
            "POST", SNAPSHOTS, data={**query, "csrf_token": other_csrf}
        ) as response:
            assert response.status == 404
            assert "没有代码为 a 的组织。" in await response.text()
        # A month in bad form or still to come stores nothing either.
        for month in ("2026-13", month_of(datetime.now(UTC), TZ).following().label):
            async with operator.request(
                "POST", SNAPSHOTS, data={"org": "a", "month": month, "csrf_token": csrf}
            ) as response:
                assert response.status == 422
        assert await stored(db) == (rows, audited)


async def test_outsiders_and_bad_input_get_the_error_page(
    client: Any, db: Db, world: World
) -> None:
    await give_password(db, "reviewer-b", "reviewer-a")
    async with Browser(client) as other, Browser(client) as reviewer:
        await other.signed_in("reviewer-b")
        outside = await page(other, f"{PAGE}?org=a&month=2026-03", 404)
        unknown = await page(other, f"{PAGE}?org=zz&month=2026-03", 404)
        assert "没有代码为 a 的组织。" in outside and "没有代码为 zz 的组织。" in unknown
        assert unknown.replace("zz", "a") == outside  # as far as a code nobody uses
        assert "凤阳县" not in outside
        await page(other, f"{XLSX}?org=a&month=2026-03", 404)
        await page(other, f"{PAGE}?org=city&month=2026-03", 404)  # above the caller
        await reviewer.signed_in("reviewer-a")
        for month in ("2026-13", "2026-3", "abc", "1999-12"):
            html = await page(reviewer, f"{PAGE}?org=a&month={month}", 422)
            assert "月份应写成 YYYY-MM 的形式，例如 2026-03。" in html
        future = month_of(datetime.now(UTC), TZ).following().label
        html = await page(reviewer, f"{PAGE}?org=a&month={future}", 422)
        assert f"{future} 尚未开始，还没有该月的报告。" in html
        await page(reviewer, f"{XLSX}?org=a&month=2026-13", 422)
        html = await page(reviewer, f"{PAGE}?org=bad%20code&month=2026-03", 404)
        assert "没有代码为 bad code 的组织。" in html
    # Nobody signed in is sent to sign in, with the way back.
    async with (
        Browser(client) as anonymous,
        anonymous.request("GET", f"{PAGE}?org=a&month=2026-03") as response,
    ):
        assert response.status == 302
        assert response.headers["Location"].startswith("/login?next=")


def test_charts_are_well_formed_for_any_data() -> None:
    empty = parse(horizontal_bars([], title="覆盖率", empty="没有下级组织"))
    assert [t.text for t in empty.iter(f"{SVG}text")] == ["没有下级组织"]
    zeros = parse(columns([Bar("1月", 0, "0"), Bar("2月", 0, "0")], title="趋势", empty="无人参训"))
    assert "无人参训" in [t.text for t in zeros.iter(f"{SVG}text")]
    assert {b.get("height") for b in bars(zeros)} == {"0"}
    odd = parse(
        horizontal_bars(
            [Bar('<支部 & "甲">', 150.0, "150%"), Bar("乙", -5, "-5%")],
            title="a < b",
            empty="",
            maximum=100.0,
        )
    )
    widths = [float(b.get("width") or 0) for b in bars(odd)]
    assert widths[0] > 0 and widths[1] == 0  # clamped to the track, never negative
    assert odd.get("aria-label") == "a < b"
    assert parse(columns([], title="t", empty="e")).get("role") == "img"
    one = parse(columns([Bar("x" * 40, 3, "3")], title="t", empty="e"))
    assert [t.text for t in one.iter(f"{SVG}text") if t.get("class") == "chart-label"] == [
        "x" * 11 + "…"
    ]
