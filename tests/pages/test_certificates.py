"""Certificates only for what the records show (issue 14, item 1), on hand-built data: a class
with a held run (one present, two absent), a second held run (one present, one arriving an hour
late) and a third run not held yet. Only the two present members get a certificate, dated by
their own held run; the first sheet states the rule and lists who was left out and why; no
document of the class names the run that has not been held as held, nor a topic code."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import Member, TrainingRecord
from server.db.session import read_session, write_session
from server.domain.class_workflow import PRINT_TEMPLATES
from server.domain.members import MemberFields
from server.services import members
from tests.support.browser import add_user
from tests.support.chromium import launched, needs_chromium, signed_in_page
from tests.support.class_workflow import CLASS_PAGE, START, add_run, page, seed_class, statuses
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
SECOND = START + timedelta(days=7)  # 2026-03-17 09:00 in Shanghai
LATER = START + timedelta(days=14)  # 2026-03-24: scheduled, never held


async def three_runs(db: Db) -> None:
    await seed_class(db)  # run 1: WF-1 present, WF-2 and WF-3 absent
    async with write_session(db) as session:
        for number, name in (("WF-4", "赵学员"), ("WF-5", "钱学员"), ("WF-6", "孙学员")):
            await members.create_member(
                session, WHOLE_TREE, "test", MemberFields(number, name, "a1a", "ordinary", None)
            )
    await add_run(
        db,
        "C01",
        "乡村振兴第二期",
        SECOND,
        [("WF-4", "WF-MAIN"), ("WF-5", "WF-MAIN")],
        {
            "WF-4": (SECOND + timedelta(hours=1), SECOND + timedelta(hours=3)),
            "WF-5": (SECOND - timedelta(minutes=10), SECOND + timedelta(hours=3)),
        },
    )
    await add_run(
        db,
        "C01",
        "乡村振兴第三期",
        LATER,
        [("WF-2", "WF-MAIN"), ("WF-6", "WF-MAIN")],
        {},
        held=False,
    )


async def records(db: Db) -> dict[str, str]:
    async with read_session(db) as session:
        rows = await session.execute(
            select(Member.member_no, TrainingRecord.credit_hours).join(
                Member, Member.id == TrainingRecord.member_id
            )
        )
        return {number: str(hours.normalize()) for number, hours in rows.all()}


async def test_only_members_credited_a_whole_run_get_a_certificate(
    client: Any, db: Db, world: World
) -> None:
    await three_runs(db)
    assert await statuses(db) == {
        "WF-1": "present",
        "WF-2": "absent",
        "WF-3": "absent",
        "WF-4": "partial",
        "WF-5": "present",
    }
    assert await records(db) == {
        "WF-1": "3",
        "WF-5": "3",
    }  # "学时已记入本人党员培训档案" holds for them
    html = await page(client, f"{CLASS_PAGE}/print/certificate", world.auth("reviewer", "a"))
    certificates = re.findall(r'<div class="certificate" data-member="([^"]+)">', html)
    assert certificates == ["WF-1", "WF-5"]
    first = html.split('<div class="certificate" data-member="WF-1">')[1].split("</div>")[0]
    assert "于2026年3月10日参加" in first and "<strong>3</strong> 学时" in first
    assert "证书编号：2026C01-WF-1" in html and "证书编号：2026C01-WF-5" in html
    fifth = html.split('<div class="certificate" data-member="WF-5">')[1].split("</div>")[0]
    assert "于2026年3月17日参加" in fifth
    assert "3月24日" not in html  # the run not held is named nowhere
    assert "不少于3学时" in html.split("data-rule>")[1].split("</p>")[0]
    counts = dict(re.findall(r'data-figure="(\w+)">(\d+)<', html))
    assert counts == {"certified": "2", "left_out": "4"}
    left_out = html.split('data-list="left-out"')[1].split("</table>")[0]
    reasons = dict(re.findall(r'data-member="([^"]+)" data-reason="(\w+)"', left_out))
    assert reasons == {"WF-2": "not_held", "WF-6": "not_held", "WF-3": "absent", "WF-4": "partial"}
    assert "缺勤" in left_out and "部分出勤未取得学时" in left_out
    assert "尚未举办或考勤尚未确定" in left_out


async def test_the_documents_say_only_what_was_held_and_name_no_topic_codes(
    client: Any, db: Db, world: World
) -> None:
    await three_runs(db)
    auth = world.auth("reviewer", "a")
    report = await page(client, f"{CLASS_PAGE}/print/summary_report", auth)
    assert "于2026年3月10日至2026年3月17日举办" in report
    assert "实际举办（考勤已确定）2期，另有1期尚未举办或考勤尚未确定" in report
    assert "取得结业证书2人" in report
    for template in PRINT_TEMPLATES:
        html = await page(client, f"{CLASS_PAGE}/print/{template.key}", auth)
        for code in ("XC-01", "JC-02"):
            assert code not in html, (template.key, code)
    notice = await page(client, f"{CLASS_PAGE}/print/opening_notice", auth)
    assert "安排“乡村振兴第一期”“乡村振兴第二期”“乡村振兴第三期”等课程" in notice


async def test_a_class_with_nobody_credited_prints_no_certificate(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db, with_run=False)
    html = await page(client, f"{CLASS_PAGE}/print/certificate", world.auth("operator", "a"))
    assert 'class="certificate"' not in html
    assert "暂无符合结业条件的学员" in html


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with launched() as browser:
        yield browser


@needs_chromium
@pytest.mark.sqlite_only
async def test_a_clerk_sees_two_certificates_and_why_four_got_none(
    client: Any, db: Db, world: World, chromium: Browser
) -> None:
    await three_runs(db)
    await add_user(db, "clerk-cert", "reviewer", "a")
    base = str(client.make_url("/")).rstrip("/")
    browser_page = await signed_in_page(chromium, base, "clerk-cert")
    await browser_page.goto(f"{base}{CLASS_PAGE}/print/certificate")
    sheets = browser_page.locator("article.sheet")
    assert await sheets.count() == 3  # the issuing sheet and two certificates
    titles = await browser_page.locator("h1.sheet-title").all_inner_texts()
    assert titles == ["结业证书发放情况", "结业证书", "结业证书"]
    counts = await browser_page.locator("[data-counts]").inner_text()
    assert "发放结业证书2人，未发放4人" in counts
    assert "缺勤1人" in counts and "部分出勤未取得学时1人" in counts
    bodies = await browser_page.locator(".certificate-body").all_inner_texts()
    assert not any("0 学时" in body or "参训0期" in body for body in bodies)
    assert await browser_page.get_by_text("3月24日").count() == 0
    pdf = await browser_page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
