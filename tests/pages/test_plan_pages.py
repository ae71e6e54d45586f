"""The plan pages, in Chinese as a township clerk sees them: the form (rows of classes, problems
shown at the box that caused them, nothing saved), the plan page with filing, the level above's
return with a comment shown prominently, editing and refiling, and the year's list with 漏备案."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEntry, Plan, PlanClass
from server.db.session import read_session
from tests.support.browser import Browser, csrf_field, give_password
from tests.support.client import Client
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]


def row(index: int, code: str, title: str, runs: str, **more: str) -> dict[str, str]:
    """The boxes of one class row of the form."""
    values = {"code": code, "title": title, "runs": runs, "trainees": "30", "hours": "2", **more}
    return {f"c{index}_{name}": value for name, value in values.items()}


async def get(browser: Browser, path: str, status: int = 200) -> str:
    async with browser.request("GET", path) as response:
        html: str = await response.text()
        assert response.status == status, (response.status, html[:1500])
    return html


async def post(browser: Browser, path: str, data: dict[str, str]) -> tuple[int, str, str]:
    """Submit a form with the page's CSRF token: status, Location, body."""
    token = await browser.csrf_token()
    async with browser.request("POST", path, data={**data, "csrf_token": token}) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def stored(db: Db) -> tuple[int, int, int]:
    async with read_session(db) as session:
        return (
            int(await session.scalar(select(func.count()).select_from(Plan)) or 0),
            int(await session.scalar(select(func.count()).select_from(PlanClass)) or 0),
            int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0),
        )


async def test_a_clerk_files_a_plan_the_county_returns_it_and_it_is_filed_again(
    client: Client,
    db: Db,
    world: World,
) -> None:
    await give_password(db, "admin-a", "reviewer-a", "operator-a")
    async with Browser(client) as admin, Browser(client) as reviewer:
        await admin.signed_in("admin-a")
        await reviewer.signed_in("reviewer-a")
        form = await get(admin, "/plans/new")
        assert "新建培训计划" in form and "培训计划" in form and csrf_field(form)
        assert form.count('name="c4_code"') == 1 and 'name="c5_code"' not in form  # 5 rows
        assert "西泉镇党委" in form and "西泉村党支部" not in form  # branches file no plan

        # A bad second row: the problem sits at its box; nothing is saved.
        before = await stored(db)
        base = {"org_code": "a1", "year": "2026", "title": "西泉镇2026年培训计划", "rows": "5"}
        status, _, html = await post(
            admin,
            "/plans",
            {
                **base,
                **row(0, "C01", "政治理论首课", "2", first="on", months="3 4"),
                **row(2, "C02", "业务班", "-1"),
            },
        )
        assert status == 422, html[:1000]
        assert re.search(r'name="c2_runs"[^>]*aria-invalid="true"', html)
        assert "必须在 0 到 1000 之间" in html and 'value="政治理论首课"' in html
        assert await stored(db) == before

        status, location, _ = await post(
            admin,
            "/plans",
            {
                **base,
                **row(0, "C01", "政治理论首课", "2", first="on", months="3，4"),
                **row(2, "C02", "业务班", "1", cat_secretary="on", targets="a1a"),
            },
        )
        assert (status, location) == (303, "/plans/a1/2026?done=created")
        page = await get(admin, location)
        assert "培训计划已保存为草稿" in page and "草稿" in page
        assert 'href="/plans/a1/2026/classes/C01"' in page
        assert "未安排政治理论首课的班次：C02" in page
        assert "报送备案" in page and "/plans/a1/2026/edit" in page
        async with read_session(db) as session:
            months = await session.scalar(select(PlanClass.months).where(PlanClass.code == "C01"))
            targets = await session.scalar(
                select(PlanClass.target_org_codes).where(PlanClass.code == "C02")
            )
        assert (months, targets) == ([3, 4], ["a1a"])

        # The county sees it only after filing; filing by a reviewer is refused.
        assert "同意备案" not in await get(reviewer, "/plans/a1/2026")
        status, _, _ = await post(reviewer, "/plans/a1/2026/file", {})
        assert status == 403
        status, location, _ = await post(admin, "/plans/a1/2026/file", {})
        assert (status, location) == (303, "/plans/a1/2026?done=file")
        assert "已报送，待审核" in await get(admin, location)
        review = await get(reviewer, "/plans/a1/2026")
        assert "同意备案" in review and "退回修改" in review

        # Returning needs a comment; the clerk then sees it first thing.
        status, _, html = await post(reviewer, "/plans/a1/2026/return", {"comment": " "})
        assert status == 422 and "退回计划前请填写修改意见" in html
        comment = "请补充首课安排，并核对培训人数"
        status, location, _ = await post(reviewer, "/plans/a1/2026/return", {"comment": comment})
        assert (status, location) == (303, "/plans/a1/2026?done=return")
        page = await get(admin, "/plans/a1/2026")
        assert page.index(comment) < page.index("班次与进度")
        assert "已退回修改" in page and "请按意见修改计划后重新报送备案" in page

        # Edit: the form holds what was filed; a dropped row drops the class.
        edit = await get(admin, "/plans/a1/2026/edit")
        assert 'value="政治理论首课"' in edit and 'value="3 4"' in edit
        assert re.search(r'name="c1_cat_secretary" value="on" checked', edit)
        status, location, _ = await post(
            admin,
            "/plans/a1/2026/edit",
            {"title": "修改后的计划", "rows": "7", **row(0, "C01", "政治理论首课", "3")},
        )
        assert (status, location) == (303, "/plans/a1/2026?done=updated")
        status, _, _ = await post(admin, "/plans/a1/2026/file", {})
        assert status == 303
        status, _, _ = await post(reviewer, "/plans/a1/2026/accept", {})
        assert status == 303
        page = await get(admin, "/plans/a1/2026")
        assert "已同意备案" in page and "修改后的计划" in page and "业务班" not in page
        # An accepted plan is no longer edited.
        assert "只有草稿或被退回的计划才能修改" in await get(admin, "/plans/a1/2026/edit", 409)
        async with read_session(db) as session:
            actions = list(
                (
                    await session.scalars(
                        select(AuditEntry.action).where(AuditEntry.object_type == "plan")
                    )
                ).all()
            )
        assert actions == [
            "plan.create",
            "plan.file",
            "plan.return",
            "plan.update",
            "plan.file",
            "plan.accept",
        ]


async def test_the_list_shows_the_year_and_who_has_not_filed(
    client: Client,
    db: Db,
    world: World,
) -> None:
    await give_password(db, "reviewer-a", "operator-b", "admin-a")
    root = world.auth("admin", "all")
    body = {"org_code": "city", "year": 2026, "title": "全市培训计划", "classes": []}
    assert (await client.post("/api/v1/plans", headers=root, json=body)).status == 201
    async with Browser(client) as reviewer, Browser(client) as other, Browser(client) as admin:
        await reviewer.signed_in("reviewer-a")
        await other.signed_in("operator-b")
        await admin.signed_in("admin-a")
        page = await get(reviewer, "/plans?year=2026")
        assert "有 1 个下级组织尚未备案培训计划（漏备案）" in page and "西泉镇党委" in page
        assert "本年度还没有培训计划" in page and "新建培训计划" not in page
        assert "全市培训计划" not in page  # above the reviewer's subtree
        assert 'href="/plans"' in page  # the navigation link 培训计划
        form = {
            "org_code": "a1",
            "year": "2026",
            "title": "甲计划",
            "rows": "5",
            **row(0, "C01", "首课", "1", first="on"),
        }
        status, _, _ = await post(admin, "/plans", form)
        assert status == 303
        assert (await post(admin, "/plans/a1/2026/file", {}))[0] == 303
        page = await get(reviewer, "/plans?year=2026")
        assert "下级组织均已备案培训计划" in page and "甲计划" in page
        assert "甲计划" not in await get(other, "/plans?year=2026")
        assert "甲计划" not in await get(reviewer, "/plans?year=2025")
        await get(other, "/plans/a1/2026", 404)
        await get(reviewer, "/plans?year=20x6", 422)
