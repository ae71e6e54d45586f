"""The session and review pages in a browser's shoes: schedule a session through the form, run it
with the workflow buttons while agents send check-ins and stream samples, then review, export and
look the credits up in a member's record."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import openpyxl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.models import (
    Attendance,
    Member,
    RosterEntry,
    SessionVenue,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.db.session import read_session
from tests.support.browser import Browser, add_user, give_password
from tests.support.session_form import DAY, post_form, session_form, setup_city
from tests.support.sessions import scan_in, upload_checkins
from tests.support.stream_stats import post_samples
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]


def at(hh: int, mm: int) -> str:
    """A Shanghai wall-clock time of the session's day, as ISO 8601 with its offset."""
    return f"{DAY}T{hh:02d}:{mm:02d}:00+08:00"


async def _text(browser: Browser, path: str, status: int = 200) -> str:
    async with browser.request("GET", path) as answer:
        text: str = await answer.text()
        assert answer.status == status, (answer.status, text[:2000])
        return text


async def _count(db: Db, model: Any, *where: Any) -> int:
    async with read_session(db) as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _schedule(browser: Browser, csrf: str, **changes: Any) -> str:
    location, _ = await post_form(browser, "/sessions", session_form(csrf, **changes))
    found = re.fullmatch(r"/sessions/([a-z0-9]+)\?notice=session_created&roster=(\d+)", location)
    assert found, location
    return found.group(1)


async def _stored(db: Db, public_id: str) -> tuple[TrainingSession, dict[str, str], dict[str, str]]:
    """The session row, its venues' roles and its roster (member → venue) as stored."""
    async with read_session(db) as session:
        training = (
            await session.execute(
                select(TrainingSession).where(TrainingSession.public_id == public_id)
            )
        ).scalar_one()
        roles = dict(
            (
                await session.execute(
                    select(Venue.code, SessionVenue.role)
                    .join(SessionVenue, SessionVenue.venue_id == Venue.id)
                    .where(SessionVenue.session_id == training.id)
                )
            ).all()
        )
        roster = dict(
            (
                await session.execute(
                    select(Member.member_no, Venue.code)
                    .join(RosterEntry, RosterEntry.member_id == Member.id)
                    .join(Venue, Venue.id == RosterEntry.venue_id)
                    .where(RosterEntry.session_id == training.id)
                )
            ).all()
        )
    return training, roles, roster


EXPECTED_ROSTER = {"A": "B1", "C": "B1", "G": "B1", "F": "B1", "E": "B2", "Q1": "M", "Q2": "M"}


async def test_schedule_list_show_and_edit(client: Any, db: Db, world: World) -> None:
    await setup_city(client, world)
    await add_user(db, "planner", "operator", "a", display_name="缪青松")
    async with Browser(client) as browser:
        csrf = await browser.signed_in("planner")
        blank = await _text(browser, "/sessions/new")
        assert "安排培训场次" in blank and 'type="datetime-local"' in blank
        assert 'name="min_ratio_pct" type="number" value="80"' in blank
        assert 'name="stats_interval_s" type="number" value="5"' in blank
        assert 'name="require_stream_verification" checked' in blank
        assert "会场B1" in blank and "府城镇党委" in blank
        assert "场次" in blank and 'href="/sessions"' in blank  # the header's link

        public_id = await _schedule(browser, csrf)
        training, roles, roster = await _stored(db, public_id)
        assert training.title == "年轻干部淬炼成钢能力提升培训" and training.state == "scheduled"
        assert training.starts_at == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
        assert training.ends_at - training.starts_at == timedelta(hours=3)
        assert training.credit_hours == Decimal(3)
        assert training.policy["stats_interval_s"] == 60 and training.policy["min_ratio"] == 0.8
        assert training.policy["require_stream_verification"] is True
        assert roles == {"M": "main", "B1": "branch", "B2": "branch"}
        assert roster == EXPECTED_ROSTER

        shown = await _text(browser, f"/sessions/{public_id}?notice=session_created&roster=7")
        assert "已安排培训场次，参训名单共 7 人" in shown
        assert "主会场" in shown and "分会场" in shown and "待开始" in shown
        assert "<code>Q2</code>" in shown and "党员Q2" in shown and "开始培训" in shown
        assert "汇总考勤" not in shown  # finalizing is the reviewer's, and not yet
        listing = await _text(browser, "/sessions")
        row = next(r for r in listing.split("<tr") if f"/sessions/{public_id}" in r)
        assert "年轻干部淬炼成钢能力提升培训" in row and "待开始" in row
        assert re.findall(r'class="num">(\d+)<', row) == ["3", "7", "3"]
        assert "2026-11-20" in row and "09:00–12:00" in row

        edit = await _text(browser, f"/sessions/{public_id}/edit")
        assert f'value="{DAY}T09:00"' in edit and f'value="{DAY}T12:00"' in edit
        assert "A B1\nC B1\nE B2\nF B1\nG B1\nQ1 M\nQ2 M" in edit
        assert (
            'value="B1" checked' in edit
            and 'name="stats_interval_s" type="number" value="60"' in edit
        )
        # The roster as the edit form shows it, plus a2 at B2 again: Q1 and Q2 keep venue M.
        lines = "A B1\nC B1\nE B2\nF B1\nG B1\nQ1 M\nQ2 M"
        changed = session_form(
            csrf,
            title="年轻干部淬炼成钢能力提升培训（第一期）",
            credit_hours="1.5",
            ends_at=f"{DAY}T10:30",
            roster_lines=lines,
            org_venue_0="B2",
            roster_file=None,
            require_stream_verification=None,
        )
        location, _ = await post_form(browser, f"/sessions/{public_id}/edit", changed)
        assert location == f"/sessions/{public_id}?notice=session_updated&roster=7"
        training, _, roster = await _stored(db, public_id)
        assert training.title.endswith("（第一期）") and training.credit_hours == Decimal("1.5")
        assert training.policy["require_stream_verification"] is False
        assert roster == EXPECTED_ROSTER
        assert "1.5 学时" in await _text(browser, location)


async def test_a_bad_form_shows_its_problems_and_writes_nothing(
    client: Any, db: Db, world: World
) -> None:
    await setup_city(client, world)
    await add_user(db, "planner", "admin", "a")
    async with Browser(client) as browser:
        csrf = await browser.signed_in("planner")
        bad = session_form(
            csrf,
            title="",
            ends_at=f"{DAY}T08:00",
            credit_hours="0",
            min_ratio_pct="150",
            late_grace_min="-1",
            roster_lines="A B1\nC\nG ZZ\nA B2\n",
            org_1="a1",
            roster_file="编号,名字\n1,2\n",
        )
        _, html = await post_form(browser, "/sessions", bad, status=422)
        assert "有些内容没有填写或填写有误" in html
        marked = set(re.findall(r'name="(\w+)"[^>]*aria-invalid="true"', html))
        assert marked == {
            "title",
            "ends_at",
            "credit_hours",
            "min_ratio_pct",
            "late_grace_min",
            "roster_lines",
        }
        assert "必须晚于开始时间" in html and "必须大于 0 且不超过 100" in html
        assert "第 2 行：需要党员编号和会场代码" in html
        assert "第 3 行（ZZ）：不是本场次的会场" in html
        assert "第 4 行（A）：党员重复" in html
        assert "需要同时选择组织和会场" in html
        assert "表头必须包含 member_no 和 venue 两列" in html
        assert 'value="年轻干部' not in html and "G ZZ" in html  # what was typed stays
        times = session_form(csrf, starts_at="0001-01-01T00:00", ends_at="noon", roster_file=None)
        _, html = await post_form(browser, "/sessions", times, status=422)
        assert html.count("必须是日期和时间") == 2
        unknown = session_form(csrf, roster_lines="NOBODY B1\nA B1", org_0="", org_venue_0="")
        _, html = await post_form(browser, "/sessions", unknown, status=422)
        assert "名单中有 1 名党员不存在：NOBODY" in html
        outside = session_form(csrf, org_0="b1", roster_file=None)
        _, html = await post_form(browser, "/sessions", outside, status=422)
        assert "组织 b1 不存在" in html
        wrong_main = session_form(csrf, main_venue="NOPE", org_venue_0="B1", roster_file=None)
        _, html = await post_form(browser, "/sessions", wrong_main, status=422)
        assert "以下会场不存在：NOPE" in html and "不是已登记的会场" in html
    assert await _count(db, TrainingSession) == 0 and await _count(db, RosterEntry) == 0


async def test_who_may_see_and_change_sessions(client: Any, db: Db, world: World) -> None:
    await setup_city(client, world)
    await give_password(db, "operator-a", "operator-b", "reviewer-a", "venue-staff-a")
    async with Browser(client) as planner:
        csrf = await planner.signed_in("operator-a")
        public_id = await _schedule(planner, csrf)
    async with Browser(client) as staff:
        # A venue's staff read the sessions at their venues (test_venue_staff_pages.py) and
        # change nothing.
        staff_csrf = await staff.signed_in("venue-staff-a")
        assert 'href="/sessions"' in await _text(staff, "/venues")
        assert public_id in await _text(staff, "/sessions")
        page = await _text(staff, f"/sessions/{public_id}")
        assert "开始培训" not in page and "编辑" not in page
        for path in ("/sessions/new", f"/sessions/{public_id}/edit"):
            await _text(staff, path, status=403)
        await post_form(staff, f"/sessions/{public_id}/start", {"csrf_token": staff_csrf}, 403)
    async with Browser(client) as other:
        other_csrf = await other.signed_in("operator-b")
        assert public_id not in await _text(other, "/sessions")
        for path in (f"/sessions/{public_id}", f"/sessions/{public_id}/edit"):
            assert "没有编号为" in await _text(other, path, status=404)
        await _text(other, f"/sessions/{public_id}/attendance.csv", status=404)
        await post_form(other, f"/sessions/{public_id}/start", {"csrf_token": other_csrf}, 404)
        await post_form(other, f"/sessions/{public_id}/edit", session_form(other_csrf), 404)
    async with Browser(client) as reviewer:
        reviewer_csrf = await reviewer.signed_in("reviewer-a")
        page = await _text(reviewer, f"/sessions/{public_id}")
        assert "开始培训" not in page and "编辑" not in page
        assert "<dd>凤阳县</dd>" in page  # the organizer by name, not its code
        await _text(reviewer, "/sessions/new", status=403)
        _, refused = await post_form(
            reviewer, f"/sessions/{public_id}/start", {"csrf_token": reviewer_csrf}, 403
        )
        assert "您的角色无权进行此操作" in refused
        await post_form(
            reviewer, f"/sessions/{public_id}/launch", {"csrf_token": reviewer_csrf}, 404
        )
        await post_form(reviewer, "/sessions", session_form(reviewer_csrf), 403)
    training, _, _ = await _stored(db, public_id)
    assert training.state == "scheduled" and await _count(db, TrainingSession) == 1


async def test_a_branch_venue_of_another_county_sees_but_does_not_change(
    client: Any, db: Db, world: World
) -> None:
    await setup_city(client, world)
    answer = await client.post(
        "/api/v1/venues",
        headers=world.auth("admin", "b"),
        json={"code": "VB", "name": "铜城镇党校", "org_code": "b1"},
    )
    assert answer.status == 201
    await give_password(db, "operator-a", "operator-b")
    async with Browser(client) as planner:
        csrf = await planner.signed_in("operator-a")
        assert "铜城镇党校" not in await _text(planner, "/sessions/new")  # no box for it
        # A branch outside the planner's county is named in the text field; E (of the planner's
        # own county: a roster never reaches beyond the organizer's subtree) sits there.
        joint = await _schedule(
            planner,
            csrf,
            other_branches="VB",
            roster_lines="A B1\nE VB",
            org_0="",
            org_venue_0="",
            roster_file=None,
        )
    _, roles, roster = await _stored(db, joint)
    assert roles == {"M": "main", "B1": "branch", "B2": "branch", "VB": "branch"}
    assert roster == {"A": "B1", "E": "VB"}
    async with Browser(client) as other:
        other_csrf = await other.signed_in("operator-b")
        assert joint in await _text(other, "/sessions")
        page = await _text(other, f"/sessions/{joint}")
        assert (
            "铜城镇党校" in page
            and "参训名单由主办组织管理" in page
            and "不少于培训时长的 80%" in page
        )
        assert "<code>A</code>" not in page and "开始培训" not in page and "编辑" not in page
        await _text(other, f"/sessions/{joint}/edit", status=403)
        await post_form(other, f"/sessions/{joint}/edit", session_form(other_csrf), 403)
        # The service refuses the change (403 or 404, as services/sessions.change_state has it).
        async with other.request(
            "POST", f"/sessions/{joint}/start", data={"csrf_token": other_csrf}
        ) as answer:
            assert answer.status in (403, 404)
    assert (await _stored(db, joint))[0].state == "scheduled"


async def _stream(client: Any, token: str, session_id: str) -> None:
    """One sample a minute (the session's stats interval), down from 10:00 to 10:20."""
    samples = [
        {
            "at": at(9 + minute // 60, minute % 60),
            "state": "down" if 60 <= minute < 80 else "good",
            "bitrate_kbps": 900.0,
            "fps": 25,
            "loss_pct": 0.0,
            "jitter_ms": 3.0,
            "freezes": 0,
            "frames_decoded": minute * 1500,
        }
        for minute in range(180)
    ]
    await post_samples(client, token, session_id, samples)


def _numbers(html: str) -> list[str]:
    body = html.split('class="data compact attendance"', 1)[-1]
    return re.findall(r'href="/members/(\w+)"><code>', body)


async def test_workflow_review_exports_and_record(client: Any, db: Db, world: World) -> None:
    tokens = await setup_city(client, world)
    await give_password(db, "operator-a", "reviewer-a", "admin-a")
    operator, reviewer, admin = Browser(client), Browser(client), Browser(client)
    try:
        op_csrf = await operator.signed_in("operator-a")
        rev_csrf = await reviewer.signed_in("reviewer-a")
        admin_csrf = await admin.signed_in("admin-a")
        sid = await _schedule(operator, op_csrf)
        base = f"/sessions/{sid}"

        _, early = await post_form(reviewer, f"{base}/finalize", {"csrf_token": rev_csrf}, 409)
        assert "无法对状态为“待开始”的场次执行“汇总考勤”操作" in early
        await _text(reviewer, f"{base}/attendance", status=409)
        assert "考勤结果在汇总后显示" in await _text(reviewer, f"{base}/attendance", status=409)

        await upload_checkins(
            client,
            tokens["B1"],
            [scan_in(sid, m, at(*t)) for m, t in (("A", (8, 50)), ("C", (9, 25)), ("G", (9, 45)))]
            + [scan_in(sid, "F", at(9, 0))],
        )
        await upload_checkins(
            client, tokens["B2"], [scan_in(sid, "E", at(8, 55)), scan_in(sid, "F", at(9, 5))]
        )
        await upload_checkins(client, tokens["M"], [scan_in(sid, "K", at(9, 0))])
        await _stream(client, tokens["B1"], sid)

        location, _ = await post_form(operator, f"{base}/start", {"csrf_token": op_csrf})
        assert location == f"{base}?notice=session_start"
        live = await _text(operator, location)
        assert "培训已开始" in live and "进行中" in live and "结束培训" in live
        await post_form(operator, f"{base}/end", {"csrf_token": op_csrf})
        assert (await _stored(db, sid))[0].state == "ended"
        edit = await _text(operator, f"{base}/edit", status=409)
        assert "只有尚未开始的场次才能修改" in edit
        await post_form(operator, f"{base}/edit", session_form(op_csrf), status=409)
        await post_form(operator, f"{base}/finalize", {"csrf_token": op_csrf}, status=403)

        ended = await _text(reviewer, base)
        assert "汇总考勤" in ended and "开始培训" not in ended
        location, _ = await post_form(reviewer, f"{base}/finalize", {"csrf_token": rev_csrf})
        assert location == f"{base}/attendance?notice=session_finalize"
        async with read_session(db) as session:
            stored = dict(
                (
                    await session.execute(
                        select(Member.member_no, Attendance.status)
                        .join(Attendance, Attendance.member_id == Member.id)
                        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
                        .where(TrainingSession.public_id == sid)
                    )
                ).all()
            )
        assert stored == {
            "A": "present",
            "C": "partial",
            "G": "partial",
            "E": "partial",
            "F": "present",
            "K": "present",
            "Q1": "absent",
            "Q2": "absent",
        }

        review = await _text(reviewer, location)
        assert "已完成考勤汇总" in review
        stats = re.findall(r'class="stat-value">(\d+)<', review)
        assert stats == ["7", "3", "3", "2", "1", "1"]
        b1 = next(r for r in review.split("<tr") if '<code class="muted">B1</code>' in r)
        assert re.findall(r'class="num">([\d.%]+)<', b1) == ["4", "4", "160", "88.9%"]
        assert review.index('<code class="muted">M</code>') < review.index(b1)  # main first
        assert _numbers(review) == ["A", "C", "E", "F", "G", "K", "Q1", "Q2"]
        f_row = next(r for r in review.split("<tr") if 'href="/members/F"' in r)
        assert "出勤" in f_row and "多会场重叠" in f_row and "非指定会场" in f_row
        assert '<span title="B2" class="elsewhere">会场B2</span>' in f_row
        e_row = next(r for r in review.split("<tr") if 'href="/members/E"' in r)
        assert "部分出勤" in e_row and "直播中断" in e_row
        assert re.findall(r'class="num">([\d.]+)<', e_row) == ["180", "0", "0"]

        partial = await _text(reviewer, f"{base}/attendance?status=partial")
        assert _numbers(partial) == ["C", "E", "G"]
        assert _numbers(await _text(reviewer, f"{base}/attendance?flag=walk_in")) == ["K"]
        assert _numbers(await _text(reviewer, f"{base}/attendance?venue=B2")) == ["E", "F"]
        late_b1 = await _text(reviewer, f"{base}/attendance?flag=late&venue=B1&status=partial")
        assert _numbers(late_b1) == ["C", "G"]
        makeup = await _text(reviewer, f"{base}/attendance?status=makeup")
        assert "补训名单" in makeup and _numbers(makeup) == ["C", "E", "G", "Q1", "Q2"]
        assert "共 8 人中的 5 人" in makeup
        assert _numbers(await _text(reviewer, f"{base}/attendance?status=bogus")) == _numbers(
            review
        )

        async with reviewer.request("GET", f"{base}/attendance.csv?status=makeup") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
            disposition = answer.headers["Content-Disposition"]
            raw = await answer.read()
        assert f'filename="attendance-{sid}.csv"' in disposition
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == (
            f"年轻干部淬炼成钢能力提升培训-出勤情况-{sid}.csv"
        )
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        # Names, not codes (issue 14, item 6).
        assert rows[0][:3] == ["党员编号", "姓名", "所在组织"] and rows[0][-1] == "学时"
        assert [row[0] for row in rows[1:]] == ["C", "E", "G", "Q1", "Q2"]
        c_row = rows[1]
        assert c_row[2:8] == ["西泉村党支部", "会场B1", "会场B1", "部分出勤", "直播中断", "迟到"]
        assert c_row[-3:] == ["155", "135", "0"]

        async with reviewer.request("GET", f"{base}/attendance.xlsx") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            )
            assert f'filename="attendance-{sid}.xlsx"' in answer.headers["Content-Disposition"]
            book = openpyxl.load_workbook(io.BytesIO(await answer.read()))
        assert book.sheetnames == ["党员", "会场"]
        members, venues = book["党员"], book["会场"]
        assert members.freeze_panes == "A2" and members["A1"].font.bold
        assert [c.value for c in members[1]][:2] == ["党员编号", "姓名"]
        assert [members.cell(row, 1).value for row in range(2, members.max_row + 1)] == [
            "A",
            "C",
            "E",
            "F",
            "G",
            "K",
            "Q1",
            "Q2",
        ]
        a_line = [c.value for c in members[2]]
        assert a_line[5] == "出勤" and a_line[-3:] == [180, 160, 3]
        assert members.column_dimensions["E"].width >= 20
        venue_rows = {row[0]: row for row in venues.iter_rows(min_row=2, values_only=True)}
        assert venue_rows["B1"][2:] == ("分会场", 4, 4, 160, 88.9)
        assert venue_rows["M"][2:] == ("主会场", 2, 1, 180, 100.0)

        # Approving asks first (test_going_live.py); the confirmed form goes ahead.
        asked = {"csrf_token": rev_csrf}
        _, page = await post_form(reviewer, f"{base}/approve", asked, status=200)
        assert "请确认：审核通过并锁定记录" in page
        assert (await _stored(db, sid))[0].state == "finalized"
        confirmed = {"csrf_token": rev_csrf, "confirmed": "yes"}
        location, _ = await post_form(reviewer, f"{base}/approve", confirmed)
        assert "审核通过" in await _text(reviewer, location)
        await post_form(reviewer, f"{base}/reopen", {"csrf_token": rev_csrf}, status=403)
        approved = await _text(admin, base)
        assert "重新开放" in approved
        await post_form(admin, f"{base}/reopen", {"csrf_token": admin_csrf, "confirmed": "yes"})
        assert (await _stored(db, sid))[0].state == "finalized"

        record = await _text(reviewer, "/members/A?year=2026")
        assert "2026 年培训档案" in record
        assert re.search(r'class="hours-earned">3<', record) and "/ 32 学时" in record
        assert 'max="32" value="3"' in record and "本年度还差 29 学时" in record
        entry = next(r for r in record.split("<tr") if f"/sessions/{sid}" in r)
        assert "2026-11-20" in entry and "T-2026-01" in entry and "出勤" in entry
        assert "<code>B1</code>" in entry and re.search(r'class="num">3<', entry)
        e_record = await _text(reviewer, "/members/E?year=2026")
        assert "部分出勤" in e_record and re.search(r'class="hours-earned">0<', e_record)
        empty = await _text(reviewer, "/members/A?year=2025")
        assert "2025 年该党员没有培训记录" in empty and 'rel="prev"' in empty
        await _text(reviewer, "/members/A?year=1800", status=422)
        async with read_session(db) as session:
            credited = (
                await session.execute(
                    select(Member.member_no, TrainingRecord.credit_hours, TrainingRecord.year)
                    .join(TrainingRecord, TrainingRecord.member_id == Member.id)
                    .order_by(Member.member_no)
                )
            ).all()
        assert [tuple(row) for row in credited] == [
            ("A", Decimal(3), 2026),
            ("F", Decimal(3), 2026),
            ("K", Decimal(3), 2026),
        ]
        # English, via the catalog's source language.
        await _text(reviewer, f"/lang/en?next={base}/attendance", status=302)
        english = await _text(reviewer, f"{base}/attendance?status=makeup")
        assert "Make-up training list" in english and "Stream outage" in english
        assert "补训" not in english
        async with reviewer.request("GET", f"{base}/attendance.csv?flag=conflict") as answer:
            lines = (await answer.read()).decode("utf-8-sig").splitlines()
        assert lines[0].startswith("Member number,Full name,Organization,")
        assert lines[1:] == [
            'F,党员F,西泉村党支部,会场B1,"会场B1, 会场B2",Present,,'
            '"Overlapping venues, Not at the assigned venue",180,160,3'
        ]
    finally:
        for browser in (operator, reviewer, admin):
            await browser.session.close()
