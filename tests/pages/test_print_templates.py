"""The print templates of the ten-step workflow: the catalogue, every template filled with a
class's data (its finalized run's roster and attendance, times in Shanghai), a class without
runs still printing every form, the A4 print layout, and unknown or hidden things answered 404."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.class_workflow import PRINT_TEMPLATES, STEP_KEYS, TEMPLATES_BY_KEY, templates_of
from tests.support.class_workflow import (
    CLASS_PAGE,
    TRAINEES,
    page,
    seed_class,
    statuses,
    step_list_form,
)
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
REQUIRED_TITLES = (
    "需求调研问卷",
    "需求分析报告",
    "培训计划备案表",
    "课程设置表",
    "课程表",
    "师资邀请函",
    "授课教师登记表",
    "开班通知",
    "报名回执",
    "报名汇总表",
    "学员登记表",
    "学员分组名单",
    "开班签到表",
    "分会场签到汇总表",
    "考勤记录表",
    "教学日志",
    "评估问卷",
    "评估汇总表",
    "培训总结报告",
    "结业证书/学时证明",
    "归档目录",
)
# What a template must show beyond the class's own facts, for the seeded class with its run.
FILLED = {
    "filing_form": ("西泉镇2026年度党员教育培训计划", "已备案待审核", "60人", "乡村振兴第一期"),
    "course_settings": ("政治理论首课", "乡村振兴第一期"),
    "timetable": ("乡村振兴第一期", "2026年3月10日 09:00—12:00", "西泉镇党校主会场"),
    "faculty_register": ("2026年3月10日 09:00—12:00", "西泉镇党校主会场"),
    "opening_notice": ("西泉村党支部", "2026年3月10日 09:00—12:00", "政治理论首课"),
    "enrolment_receipt": ("张学员", "李学员", "王学员", "WF-3"),
    "enrolment_summary": ("西泉村党支部", "西泉镇党委"),
    "trainee_groups": ("张学员", "王学员", "组长"),
    "venue_signin_summary": ("西泉镇党校主会场", "西泉村分会场", "主会场", "分会场"),
    "attendance_record": ("出勤", "缺勤", "张学员", "180"),
    "teaching_log": ("乡村振兴第一期", "所属班次", "3 / 1"),
    "evaluation_summary": ("33.3%",),
    "summary_report": ("实际举办（考勤已确定）1期", "花名册3人次、3人", "取得结业证书1人", "33.3%"),
    "certificate": ("张学员", "王学员", "3</strong> 学时", "结业证书发放情况"),
    "archive_index": ("开班签到表", "第7步 开班签到", "一党委一专柜"),
}


def text_of(html: str) -> str:
    """The page without its tags, as a reader sees it."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_catalogue_covers_every_step_with_at_least_twenty_forms() -> None:
    assert len(PRINT_TEMPLATES) >= 20
    assert len(TEMPLATES_BY_KEY) == len(PRINT_TEMPLATES)
    titles = [template.title for template in PRINT_TEMPLATES]
    assert len(set(titles)) == len(titles)
    assert set(REQUIRED_TITLES) <= set(titles)
    for key in STEP_KEYS:
        assert templates_of(key), f"step {key} has no template"
    for template in PRINT_TEMPLATES:
        assert template.step in STEP_KEYS
        assert re.fullmatch(r"[a-z_]+", template.key)
        assert (TEMPLATES / template.file).is_file(), template.file
    assert (STATIC / "print.css").is_file() and (STATIC / "print.js").is_file()


async def test_every_template_is_filled_with_the_class_and_its_run(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    auth = world.auth("reviewer", "a")
    for template in PRINT_TEMPLATES:
        html = await page(client, f"{CLASS_PAGE}/print/{template.key}", auth)
        words = text_of(html)
        assert '<html lang="zh-CN">' in html
        assert "/static/print.css" in html and 'class="sheet' in html
        assert 'class="print-toolbar"' in html  # hidden in print by print.css
        assert 'class="top"' not in html and "main-nav" not in html  # no site navigation
        assert '<span class="sheet-org">西泉镇党委</span>' in html, template.key
        heading = template.title.split("/")[0]
        assert heading in words or template.key in ("trainee_register", "opening_notice")
        for fact in ("乡村振兴专题培训班", "C01", "2026"):
            assert fact in words, (template.key, fact)
        for expected in FILLED.get(template.key, ()):
            assert expected in html, (template.key, expected)


async def test_the_sign_in_sheet_lists_the_roster_with_a_blank_signature_column(
    client: Any, db: Db, world: World
) -> None:
    seeded = await seed_class(db)
    html = await page(client, f"{CLASS_PAGE}/print/signin_sheet", world.auth("operator", "a"))
    table = html.split(f'data-run="{seeded.session_id}"')[1].split("</table>")[0]
    assert "本人签名" in table
    venue_of = {"WF-1": "西泉镇党校主会场", "WF-2": "西泉镇党校主会场", "WF-3": "西泉村分会场"}
    org_of = {"a1a": "西泉村党支部", "a1": "西泉镇党委"}
    for number, name, org in TRAINEES:
        row = table.split(f'data-member="{number}"')[1].split("</tr>")[0]
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
        assert cells[1:5] == [number, name, org_of[org], venue_of[number]], cells
        assert cells[-1] == "" and 'class="sign"' in row  # the signature is left blank
    assert "2026年3月10日 09:00—12:00" in html  # 01:00 UTC is 09:00 in Shanghai


async def test_attendance_and_certificates_follow_the_finalized_results(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    results = await statuses(db)
    assert results == {"WF-1": "present", "WF-2": "absent", "WF-3": "absent"}
    auth = world.auth("admin", "a")
    record = await page(client, f"{CLASS_PAGE}/print/attendance_record", auth)
    words = {"present": "出勤", "absent": "缺勤"}
    for number, status in results.items():
        row = record.split(f'data-member="{number}"')[1].split("</tr>")[0]
        assert f"<td>{words[status]}</td>" in row, number
    report = await page(client, f"{CLASS_PAGE}/print/summary_report", auth)
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', report))
    assert figures == {
        "runs_finalized": "1",
        "expected": "3",
        "present": "1",
        "partial": "0",
        "absent": "2",
        "rate": "33.3%",
        "hours": "3",
    }
    certificates = await page(client, f"{CLASS_PAGE}/print/certificate", auth)
    assert certificates.count('class="certificate"') == 1  # the absent get none (issue 14)
    first = certificates.split('<div class="certificate" data-member="WF-1"')[1].split("</div>")[0]
    assert "张学员" in first and "<strong>3</strong> 学时" in first
    assert 'data-member="WF-2" data-reason="absent"' in certificates
    register = await page(client, f"{CLASS_PAGE}/print/trainee_register", auth)
    assert register.count("<article") == 3 and "党员培训登记表" in register


async def test_a_class_without_runs_prints_every_form_blank(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db, with_run=False)
    auth = world.auth("operator", "a")
    for template in PRINT_TEMPLATES:
        html = await page(client, f"{CLASS_PAGE}/print/{template.key}", auth)
        assert "乡村振兴专题培训班" in html, template.key
        assert "<article" in html, template.key
    signin = await page(client, f"{CLASS_PAGE}/print/signin_sheet", auth)
    assert signin.count('<tr class="blank">') == 10
    certificate = await page(client, f"{CLASS_PAGE}/print/certificate", auth)
    assert "暂无符合结业条件的学员" in certificate


async def test_a_renamed_step_heads_its_templates(client: Any, db: Db, world: World) -> None:
    await seed_class(db, with_run=False)
    order = ["opening_signin", *[key for key in STEP_KEYS if key != "opening_signin"]]
    answer = await client.post(
        "/workflow-steps",
        data=step_list_form({"opening_signin": "报到签到"}, order),
        headers=world.auth("admin", "all"),
        allow_redirects=False,
    )
    assert answer.status == 303
    html = await page(client, f"{CLASS_PAGE}/print/signin_sheet", world.auth("reviewer", "a"))
    assert "十步工作法 · 第1步 · 报到签到" in html
    index = await page(client, f"{CLASS_PAGE}/print/archive_index", world.auth("reviewer", "a"))
    assert "第1步 报到签到" in index


@pytest.mark.parametrize(
    ("path", "role", "subtree"),
    [
        (f"{CLASS_PAGE}/print/no_such_form", "reviewer", "a"),
        (f"{CLASS_PAGE}/print/signin_sheet", "reviewer", "b"),
        (f"{CLASS_PAGE}/print/signin_sheet", "admin", "b"),
        ("/plans/a1/2026/classes/C02/print/signin_sheet", "operator", "a"),
        ("/plans/b1/2026/classes/C01/print/signin_sheet", "operator", "a"),
    ],
)
async def test_unknown_forms_and_hidden_classes_are_not_found(
    path: str, role: str, subtree: str, client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    html = await page(client, path, world.auth(role, subtree), 404)
    assert "张学员" not in html and "乡村振兴" not in html


async def test_venue_staff_may_not_print(client: Any, db: Db, world: World) -> None:
    await seed_class(db)
    answer = await client.get(
        f"{CLASS_PAGE}/print/signin_sheet", headers=world.auth("venue_staff", "a")
    )
    assert answer.status == 403
