"""The ten-step class workflow (十步工作法): the default list and an admin's renames and order,
the class page, marking a step done or not done (who, when, audited), and bad input refused
with nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import AuditEntry, ClassStep, WorkflowStep
from server.db.session import read_session
from server.domain.class_workflow import (
    NOT_A_POSITION,
    POSITION_TWICE,
    STEP_KEYS,
    STEP_LABELS,
    StepSetting,
    merge_steps,
    parse_mark,
    parse_step_list,
)
from tests.support.browser import Browser, give_password
from tests.support.class_workflow import CLASS_PAGE, TZ, page, seed_class, step_list_form
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
ZH_DEFAULTS = {
    "needs_analysis": "需求调研",
    "plan_filing": "计划备案",
    "curriculum": "课程设计",
    "faculty": "师资遴选",
    "notice_enrolment": "通知报名",
    "registration_forms": "登记建档",
    "opening_signin": "开班签到",
    "teaching_attendance": "教学考勤",
    "evaluation": "评估问卷",
    "archiving": "总结归档",
}


async def marks(db: Db) -> list[tuple[str, bool, str | None, datetime | None, str | None]]:
    async with read_session(db) as session:
        rows = (
            await session.execute(
                select(
                    ClassStep.step_key,
                    ClassStep.done,
                    ClassStep.done_by,
                    ClassStep.done_at,
                    ClassStep.note,
                ).order_by(ClassStep.step_key)
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def audits(db: Db, action_prefix: str) -> list[AuditEntry]:
    async with read_session(db) as session:
        found = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.startswith(action_prefix))
            .order_by(AuditEntry.id)
        )
        return list(found)


async def audit_count(db: Db) -> int:
    async with read_session(db) as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def step_order(html: str) -> list[str]:
    """The step keys in the order the class page lists them."""
    keys = []
    for chunk in html.split('data-step="')[1:]:
        keys.append(chunk.split('"', 1)[0])
    return keys


# ---- the pure rules ----


def test_the_default_list_is_the_citys_ten_steps_in_order() -> None:
    steps = merge_steps([])
    assert [s.key for s in steps] == list(STEP_KEYS)
    assert [s.position for s in steps] == list(range(1, 11))
    assert all(s.name is None and s.label == STEP_LABELS[s.key] for s in steps)


def test_stored_settings_win_and_missing_keys_keep_their_defaults() -> None:
    stored = [
        StepSetting("archiving", 1, "归档立卷"),
        StepSetting("needs_analysis", 10, None),
        StepSetting("no_such_step", 2, "ignored"),
    ]
    steps = merge_steps(stored)
    assert [s.key for s in steps][:2] == ["archiving", "plan_filing"]
    assert steps[-1].key == "needs_analysis"
    assert steps[0].name == "归档立卷"
    assert [s.position for s in steps] == list(range(1, 11))
    assert len(steps) == 10


def test_a_step_list_must_number_the_ten_steps_once_each() -> None:
    settings, problems = parse_step_list(step_list_form(), ZH_DEFAULTS)
    assert settings is not None and not problems
    assert all(s.name is None for s in settings)  # a default name is no rename
    renamed, _ = parse_step_list(step_list_form({"faculty": " 师资选聘 "}), ZH_DEFAULTS)
    assert renamed is not None
    assert {s.key: s.name for s in renamed}["faculty"] == "师资选聘"
    zh_default, _ = parse_step_list(step_list_form({"faculty": "师资遴选"}), ZH_DEFAULTS)
    assert zh_default is not None and {s.key: s.name for s in zh_default}["faculty"] is None

    twice = step_list_form() | {"position_faculty": "1"}
    settings, problems = parse_step_list(twice, ZH_DEFAULTS)
    assert settings is None
    assert problems == {
        "position_needs_analysis": POSITION_TWICE,
        "position_faculty": POSITION_TWICE,
    }
    for bad in ("0", "11", "x", "", "1.5", "-1"):
        _, problems = parse_step_list(step_list_form() | {"position_archiving": bad}, ZH_DEFAULTS)
        assert problems["position_archiving"] == NOT_A_POSITION, bad
    missing = {k: v for k, v in step_list_form().items() if k != "position_curriculum"}
    assert parse_step_list(missing, ZH_DEFAULTS)[1]["position_curriculum"] == NOT_A_POSITION
    _, problems = parse_step_list(step_list_form({"curriculum": "  "}), ZH_DEFAULTS)
    assert problems == {"name_curriculum": "is required"}
    _, problems = parse_step_list(step_list_form({"curriculum": "长" * 101}), ZH_DEFAULTS)
    assert problems == {"name_curriculum": "is too long"}
    assert not parse_step_list(step_list_form({"curriculum": "长" * 100}), ZH_DEFAULTS)[1]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"done": "maybe"}, "done"),
        ({}, "done"),
        ({"done": "on", "note": "x" * 501}, "note"),
        ({"done": "on", "note": "bell\x07"}, "note"),
    ],
)
def test_bad_marks_are_named(raw: dict[str, str], field: str) -> None:
    mark, problems = parse_mark(raw)
    assert mark is None and field in problems


def test_a_note_may_run_over_lines() -> None:
    mark, problems = parse_mark({"done": "on", "note": " 第一行\r\n第二行 "})
    assert mark is not None and not problems
    assert (mark.done, mark.note) == (True, "第一行\n第二行")
    assert parse_mark({"done": "off", "note": "  "})[0] == parse_mark({"done": "off"})[0]


# ---- the class page and marking ----


async def test_the_class_page_shows_the_class_its_run_and_the_default_steps(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    html = await page(client, CLASS_PAGE, world.auth("reviewer", "a"))
    for text in ("乡村振兴专题培训班", "C01", "西泉镇党委", "乡村振兴第一期", "2026-03-10 09:00"):
        assert text in html, text
    assert step_order(html) == list(STEP_KEYS)
    for key, name in ZH_DEFAULTS.items():
        assert name in html, key
    assert 'data-done="yes"' not in html
    assert "标记完成" not in html  # a reviewer reads and prints but does not mark
    assert "/plans/a1/2026/classes/C01/print/signin_sheet" in html
    operator = await page(client, CLASS_PAGE, world.auth("operator", "a"))
    assert operator.count("标记完成") == 10


async def test_marking_a_step_keeps_who_and_when_and_is_audited(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db, with_run=False)
    await give_password(db, "operator-a")
    path = f"{CLASS_PAGE}/steps/opening_signin"
    async with Browser(client) as browser:
        csrf = await browser.signed_in("operator-a")
        before = datetime.now(UTC)
        async with browser.request(
            "POST", path, data={"csrf_token": csrf, "done": "on", "note": "签到表已收齐"}
        ) as answer:
            assert answer.status == 303, await answer.text()
            assert answer.headers["Location"] == f"{CLASS_PAGE}#step-opening_signin"
        after = datetime.now(UTC)
        [(key, done, who, when, note)] = await marks(db)
        assert (key, done, who, note) == ("opening_signin", True, "user:operator-a", "签到表已收齐")
        assert when is not None and before <= when <= after
        [entry] = await audits(db, "class_step.")
        assert (entry.action, entry.actor, entry.object_type, entry.object_id) == (
            "class_step.done",
            "user:operator-a",
            "class_step",
            "a1/2026/C01/opening_signin",
        )
        assert json.loads(entry.before or "{}")["done"] is False
        assert json.loads(entry.after or "{}") == {
            "done": True,
            "done_by": "user:operator-a",
            "done_at": when.isoformat(),
            "note": "签到表已收齐",
        }
        async with browser.request("GET", CLASS_PAGE) as answer:
            html = await answer.text()
        row = html.split('id="step-opening_signin"')[1].split("</tr>")[0]
        assert 'data-done="yes"' in row and "user:operator-a" in row and "签到表已收齐" in row
        local = when.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
        assert local in row

        # Marked done again: only the note changes; who and when stay.
        async with browser.request(
            "POST", path, data={"csrf_token": csrf, "done": "on", "note": "已归档"}
        ) as answer:
            assert answer.status == 303
        assert (await marks(db))[0][1:] == (True, "user:operator-a", when, "已归档")
        # The same again changes nothing and writes no audit entry.
        count = await audit_count(db)
        async with browser.request(
            "POST", path, data={"csrf_token": csrf, "done": "on", "note": "已归档"}
        ) as answer:
            assert answer.status == 303
        assert await audit_count(db) == count

        async with browser.request(
            "POST", path, data={"csrf_token": csrf, "done": "off"}
        ) as answer:
            assert answer.status == 303
    assert (await marks(db))[0][1:] == (False, None, None, None)
    undone = (await audits(db, "class_step."))[-1]
    assert undone.action == "class_step.undone"
    assert json.loads(undone.after or "{}")["done"] is False
    assert json.loads(undone.before or "{}")["note"] == "已归档"


async def test_bad_marks_write_nothing(client: Any, db: Db, world: World) -> None:
    await seed_class(db, with_run=False)
    operator = world.auth("operator", "a")
    before = await audit_count(db)
    step = f"{CLASS_PAGE}/steps/faculty"
    cases: list[tuple[str, dict[str, str], dict[str, str], int, str]] = [
        (step, {"done": "maybe"}, operator, 422, "必须是"),
        (step, {"done": "on", "note": "长" * 501}, operator, 422, "内容过长"),
        (f"{CLASS_PAGE}/steps/no_such_step", {"done": "on"}, operator, 404, "no_such_step"),
        (f"{CLASS_PAGE}/steps/no_such_step", {"done": "x"}, operator, 404, "no_such_step"),
        ("/plans/a1/2026/classes/C99/steps/faculty", {"done": "on"}, operator, 404, "C99"),
        ("/plans/a1/2025/classes/C01/steps/faculty", {"done": "on"}, operator, 404, "C01"),
        ("/plans/a1/20x6/classes/C01/steps/faculty", {"done": "on"}, operator, 404, "C01"),
        (step, {"done": "on"}, world.auth("reviewer", "a"), 403, ""),
        (step, {"done": "on"}, world.auth("operator", "b"), 404, "C01"),
        (step, {"done": "maybe"}, world.auth("admin", "b"), 404, "C01"),
    ]
    for path, data, auth, status, text in cases:
        answer = await client.post(path, data=data, headers=auth, allow_redirects=False)
        body = await answer.text()
        assert answer.status == status, (path, data, answer.status, body[:300])
        assert text in body, (path, text)
        assert "西泉镇党委" not in body or auth is operator, path
    assert await marks(db) == []
    assert await audit_count(db) == before
    # The refused form shows the page again with the problem at its step.
    answer = await client.post(step, data={"done": "on", "note": "长" * 501}, headers=operator)
    html = await answer.text()
    row = html.split('id="step-faculty"')[1].split("</tr>")[0]
    assert 'class="alert"' in row and "长" * 501 in row


async def test_other_subtrees_and_unknown_classes_answer_alike(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    for role in ("admin", "operator", "reviewer"):
        other = await page(client, CLASS_PAGE, world.auth(role, "b"), 404)
        unknown = await page(
            client, "/plans/zz-nosuch/2026/classes/C01", world.auth(role, "b"), 404
        )
        assert other.replace("a1", "<ORG>") == unknown.replace("zz-nosuch", "<ORG>")
        assert "乡村振兴" not in other and "西泉" not in other
    whole = await page(client, CLASS_PAGE, world.auth("admin", "all"))
    assert "乡村振兴专题培训班" in whole
    assert (await client.get(CLASS_PAGE, allow_redirects=False)).status == 302


# ---- renaming and reordering the list ----


async def stored_steps(db: Db) -> list[tuple[str, int, str | None, str | None]]:
    async with read_session(db) as session:
        rows = (
            await session.execute(
                select(
                    WorkflowStep.key,
                    WorkflowStep.position,
                    WorkflowStep.name,
                    WorkflowStep.updated_by,
                ).order_by(WorkflowStep.position)
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_renamed_and_reordered_list_shows_on_the_class_page(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db, with_run=False)
    root = world.auth("admin", "all")
    form_page = await page(client, "/workflow-steps", root)
    assert 'name="name_needs_analysis" type="text" value="需求调研"' in form_page
    order = [*STEP_KEYS[1:3], STEP_KEYS[0], *STEP_KEYS[3:]]
    data = step_list_form({"needs_analysis": "摸底调研", "faculty": "师资遴选"}, order)
    answer = await client.post("/workflow-steps", data=data, headers=root, allow_redirects=False)
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == "/workflow-steps?saved=1"
    stored = await stored_steps(db)
    assert [row[0] for row in stored] == order
    assert {row[0]: row[2] for row in stored} == {
        key: ("摸底调研" if key == "needs_analysis" else None) for key in STEP_KEYS
    }
    assert {row[3] for row in stored} == {"user:root"}
    [entry] = await audits(db, "workflow_steps.")
    assert (entry.action, entry.actor, entry.object_id) == (
        "workflow_steps.update",
        "user:root",
        "standard",
    )
    assert json.loads(entry.before or "{}")["steps"][0] == {
        "key": "needs_analysis",
        "position": 1,
        "name": None,
    }
    assert json.loads(entry.after or "{}")["steps"][2] == {
        "key": "needs_analysis",
        "position": 3,
        "name": "摸底调研",
    }
    html = await page(client, CLASS_PAGE, world.auth("reviewer", "a"))
    assert step_order(html) == order
    first = html.split('id="step-needs_analysis"')[1].split("</tr>")[0]
    assert '<td class="strong">摸底调研</td>' in first and "需求调研</td>" not in first
    english = await page(
        client, CLASS_PAGE, {**world.auth("reviewer", "a"), "Cookie": "hetang_lang=en"}
    )
    assert "Plan filing" in english and "摸底调研" in english
    saved = await page(client, "/workflow-steps?saved=1", root)
    assert "已保存" in saved
    # Saving the same list again is no change: nothing written, nothing audited.
    count = await audit_count(db)
    answer = await client.post("/workflow-steps", data=data, headers=root, allow_redirects=False)
    assert answer.status == 303
    assert await audit_count(db) == count


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name_curriculum": ""}, "name_curriculum"),
        ({"name_curriculum": "长" * 101}, "name_curriculum"),
        ({"position_curriculum": "1"}, "position_curriculum"),
        ({"position_curriculum": "11"}, "position_curriculum"),
        ({"position_curriculum": "三"}, "position_curriculum"),
    ],
)
async def test_a_bad_step_list_is_shown_again_and_nothing_is_written(
    change: dict[str, str], field: str, client: Any, db: Db, world: World
) -> None:
    before = await audit_count(db)
    data = step_list_form({"faculty": "师资选聘"}) | change
    answer = await client.post("/workflow-steps", data=data, headers=world.auth("admin", "all"))
    html = await answer.text()
    assert answer.status == 422, html[:300]
    assert 'class="alert"' in html and f'name="{field}"' in html
    assert 'aria-invalid="true"' in html.split(f'name="{field}"')[1].split(">")[0]
    assert "师资选聘" in html  # what was typed is kept
    assert await stored_steps(db) == []
    assert await audit_count(db) == before


async def test_only_a_whole_tree_admin_changes_the_list(client: Any, db: Db, world: World) -> None:
    for role, subtree in (("admin", "a"), ("admin", "b"), ("operator", "a"), ("reviewer", "a")):
        auth = world.auth(role, subtree)
        assert (await client.get("/workflow-steps", headers=auth)).status == 403
        answer = await client.post(
            "/workflow-steps", data=step_list_form({"faculty": "改名"}), headers=auth
        )
        assert answer.status == 403
    assert await stored_steps(db) == []
    assert await audits(db, "workflow_steps.") == []
    assert 'href="/workflow-steps"' in await page(client, "/", world.auth("admin", "all"))
    assert 'href="/workflow-steps"' not in await page(client, "/", world.auth("admin", "a"))
