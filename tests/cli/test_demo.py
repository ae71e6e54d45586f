"""`hetang demo`: an empty database becomes the demo city; a non-empty one is left alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.passwords import PasswordService
from server.auth.principal import WHOLE_TREE
from server.db.models import (
    Attendance,
    AuditEntry,
    ClassStep,
    Member,
    Organization,
    Plan,
    PlanClass,
    RosterEntry,
    SessionVenue,
    StreamSample,
    TrainingRecord,
    TrainingSession,
    User,
    Venue,
)
from server.db.session import make_engine, make_sessionmaker, read_session, write_session
from server.demo.city import DemoRefused, seed_demo
from server.demo.data import LOGINS
from server.demo.today import TITLE as TODAYS_TITLE
from server.domain.attendance import Policy
from server.services import audit, plan_analysis, users
from tests.support.world import SECRET

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHUZHOU_COUNTIES = frozenset(
    ("琅琊区", "南谯区", "天长市", "明光市", "来安县", "全椒县", "定远县", "凤阳县")
)


async def _seed(db: async_sessionmaker[AsyncSession]) -> tuple[list[str], list[str]]:
    """The demo city with one month of its history (tests/cli/test_demo_year.py builds the
    whole year once)."""
    said: list[str] = []
    lines = await seed_demo(db, said.append, history_months=1)
    return lines, said


async def _counts(db: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    models = (Organization, Member, User, Venue, TrainingSession, RosterEntry, AuditEntry)
    async with read_session(db) as session:
        return {
            model.__name__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in models
        }


async def test_demo_fills_an_empty_database(db: async_sessionmaker[AsyncSession]) -> None:
    lines, said = await _seed(db)
    assert said and all(line.isascii() for line in said)
    async with read_session(db) as session:
        levels = Counter((await session.scalars(select(Organization.level))).all())
        assert levels["city"] == 1 and levels["county"] == 8
        assert 35 <= levels["committee"] <= 45 and 110 <= levels["branch"] <= 130
        counties = set(
            (
                await session.scalars(
                    select(Organization.name).where(Organization.level == "county")
                )
            ).all()
        )
        assert counties == CHUZHOU_COUNTIES
        codes = set((await session.scalars(select(Organization.code))).all())
        assert {"cz", "cz-fy", "cz-fy-xq", "cz-fy-xq-01", "cz-tc-tc", "cz-dy-zq"} <= codes

        members = (
            await session.execute(
                select(
                    Member.member_no,
                    Member.name,
                    Member.category,
                    Member.card_code,
                    Organization.level,
                ).join(Organization, Member.org_id == Organization.id)
            )
        ).all()
        assert len(members) == 3000
        assert all(re.fullmatch(r"3411\d{6}", m.member_no) for m in members)
        assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", m.name) for m in members)
        assert {m.level for m in members} == {"branch"}
        categories = Counter(m.category for m in members)
        assert categories["ordinary"] > categories["committee"] > categories["secretary"] > 0
        assert categories["secretary"] == levels["branch"]  # one per branch
        assert 0.8 * 3000 < sum(1 for m in members if m.card_code) < 3000

        venues = (await session.scalars(select(Venue.name))).all()
        assert len(venues) == 20
        assert any("主会场" in name for name in venues)
        assert any("实训基地" in name for name in venues)
        assert any(name.endswith("镇党校") for name in venues)

        accounts = (
            await session.execute(
                select(User.username, User.role, Organization.code).outerjoin(
                    Organization, User.org_id == Organization.id
                )
            )
        ).all()
        assert sorted(a.role for a in accounts) == ["admin", "operator", "reviewer", "venue_staff"]
        scopes = {a.role: a.code for a in accounts}
        assert scopes["admin"] is None and scopes["operator"] == scopes["reviewer"] == "cz"
        assert scopes["venue_staff"].startswith("cz-") and scopes["venue_staff"].count("-") == 1

        sessions = (await session.scalars(select(TrainingSession))).all()
        assert len(sessions) >= 3
        # The past ones were held, finalized (the oldest approved); the others lie ahead.
        assert {s.state for s in sessions} == {"approved", "finalized", "scheduled"}
        titles = " ".join(s.title for s in sessions)
        for title in ("年轻干部淬炼成钢", "村党组织书记全覆盖兜底培训", "政治理论首课"):
            assert title in titles
        for training in sessions:
            assert re.fullmatch(r"[a-z0-9]{12}", training.public_id)
            assert training.policy == Policy().to_json()
            local = training.starts_at.astimezone(SHANGHAI)
            # Classes start at 9:00, except today's, which starts within minutes of the build.
            assert (local.hour, local.minute) == (9, 0) or training.title == TODAYS_TITLE
            assert training.ends_at > training.starts_at
            past = training.state in ("finalized", "approved")
            assert (training.ended_at is not None) == past
            roles = Counter(
                (
                    await session.scalars(
                        select(SessionVenue.role).where(SessionVenue.session_id == training.id)
                    )
                ).all()
            )
            # A month's study of an area without rooms of its own is held in one room.
            assert roles["main"] == 1
            assert roles["branch"] >= 1 or "月党员集中学习" in training.title
            roster = (
                await session.execute(
                    select(RosterEntry.venue_id, SessionVenue.id)
                    .outerjoin(
                        SessionVenue,
                        (SessionVenue.session_id == RosterEntry.session_id)
                        & (SessionVenue.venue_id == RosterEntry.venue_id),
                    )
                    .where(RosterEntry.session_id == training.id)
                )
            ).all()
            assert 100 <= len(roster) <= 600
            assert all(joined is not None for _, joined in roster)  # a venue of the session
            assert len({venue for venue, _ in roster}) > 1 or roles["branch"] == 0
        joint = next(s for s in sessions if "淬炼成钢" in s.title and s.state == "scheduled")
        joint_venues = await session.scalars(
            select(SessionVenue.venue_id).where(SessionVenue.session_id == joint.id)
        )
        assert len(joint_venues.all()) >= 10
    text = "\n".join(lines)
    assert "http://127.0.0.1:8080" in text
    for login in LOGINS:
        assert login.username in text and login.password in text and login.role in text


async def test_the_audit_trail_covers_every_created_object(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await _seed(db)
    async with read_session(db) as session:
        report = await audit.verify(session)
        assert report.ok, report.problem
        rows = (
            await session.execute(
                select(AuditEntry.object_type, AuditEntry.object_id, AuditEntry.action)
            )
        ).all()
        audited = Counter((row.object_type, row.object_id) for row in rows)
        # Each object is created (or imported) once; a session is then finalized, or approved.
        created = Counter(
            (row.object_type, row.object_id)
            for row in rows
            if row.action.endswith((".create", ".import"))
        )
        actors = set((await session.scalars(select(AuditEntry.actor))).all())
        assert actors == {"demo"}
        for object_type, column in (
            ("organization", Organization.code),
            ("member", Member.member_no),
            ("venue", Venue.code),
            ("user", User.username),
            ("session", TrainingSession.public_id),
        ):
            keys = (await session.scalars(select(column))).all()
            assert keys and all(created[(object_type, key)] == 1 for key in keys)
        assert report.count == sum(audited.values())


async def test_a_second_run_is_refused_and_changes_nothing(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await _seed(db)
    before = await _counts(db)
    with pytest.raises(DemoRefused, match=r"already has data .*3000 members"):
        await _seed(db)
    assert await _counts(db) == before
    async with read_session(db) as session:
        assert (await audit.verify(session)).ok


async def test_any_data_is_enough_to_refuse(db: async_sessionmaker[AsyncSession]) -> None:
    async with write_session(db) as session:
        await users.create_user(
            session,
            WHOLE_TREE,
            "test",
            username="someone",
            display_name="someone",
            role="admin",
            org_code=None,
            password_hash=None,
        )
    before = await _counts(db)
    with pytest.raises(DemoRefused, match="1 users"):
        await _seed(db)
    assert await _counts(db) == before


async def test_demo_users_can_sign_in(db: async_sessionmaker[AsyncSession]) -> None:
    await _seed(db)
    passwords = PasswordService()
    async with read_session(db) as session:
        for login in LOGINS:
            stored = (
                await session.execute(
                    select(User.password_hash, User.is_active).where(
                        User.username == login.username
                    )
                )
            ).one()
            assert stored.is_active
            assert await passwords.verify(stored.password_hash, login.password)
            assert not await passwords.verify(stored.password_hash, login.password + "x")


async def test_the_demo_is_reproducible(tmp_path: Path, sqlite_template: Path) -> None:
    query = (
        select(Member.member_no, Member.name, Member.category, Member.card_code, Organization.name)
        .join(Organization, Member.org_id == Organization.id)
        .order_by(Member.member_no)
    )
    found = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.sqlite3"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            factory = make_sessionmaker(engine)
            await seed_demo(factory, lambda _: None, history_months=0)
            async with read_session(factory) as session:
                found.append((await session.execute(query)).all())
        finally:
            await engine.dispose()
    assert len(found[0]) == 3000 and found[0] == found[1]


@pytest.mark.slow
def test_the_cli_adds_the_demo_once(tmp_path: Path) -> None:
    hetang = Path(sys.executable).parent / "hetang"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HETANG_")}
    env.update(HETANG_DATA_DIR=str(tmp_path), HETANG_SECRET_KEY=SECRET)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(hetang), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("migrate").returncode == 0
    first = run("demo")
    assert first.returncode == 0, first.stderr
    assert "http://127.0.0.1:8080" in first.stdout and "hetang-admin" in first.stdout
    assert "members: 3000" in first.stderr
    again = run("demo")
    assert again.returncode == 1
    assert "already has data" in again.stderr and "Traceback" not in again.stderr
    assert again.stdout == ""
    quiet = run("demo", "--if-empty")
    assert quiet.returncode == 0, quiet.stderr
    assert "Traceback" not in quiet.stderr
    assert "admin" in quiet.stdout and "hetang-admin" in quiet.stdout  # the logins again
    # Today's session is still the one the build scheduled: it starts within minutes.
    today = [line for line in first.stdout.splitlines() if line.startswith("today's session")]
    assert len(today) == 1 and today[0] in quiet.stdout.splitlines()
    verified = run("audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok: ")


async def test_the_demo_files_this_years_plans(db: async_sessionmaker[AsyncSession]) -> None:
    """Every level's plan in a state a newcomer recognizes: the city's accepted, one county
    returned with a comment, one in draft, one with nothing filed (漏备案); the demo sessions
    are runs of their classes; the city's young-cadre class has its first steps done."""
    await _seed(db)
    year = datetime.now(SHANGHAI).year
    async with read_session(db) as session:
        states = dict(
            (
                await session.execute(
                    select(Organization.code, Plan.state)
                    .join(Plan, Plan.org_id == Organization.id)
                    .where(Plan.year == year)
                )
            ).all()
        )
        city = await plan_analysis.analyse(session, WHOLE_TREE, "cz", year)
        linked = (
            await session.execute(
                select(TrainingSession.title, PlanClass.code)
                .join(PlanClass, PlanClass.id == TrainingSession.plan_class_id)
                .order_by(TrainingSession.starts_at)
            )
        ).all()
        steps = (await session.scalars(select(ClassStep.step_key).where(ClassStep.done))).all()
        returned = await session.scalar(select(Plan.review_comment).where(Plan.state == "returned"))
    assert states["cz"] == "accepted" and states["cz-nq"] == "returned"
    assert states["cz-la"] == "draft" and "cz-mg" not in states
    assert set(city.not_filed) == {"cz-mg", "cz-la", "cz-nq"}
    assert returned and "首课" in returned
    # Runs in this year are linked (the sessions lie from 28 days back to 3 ahead: some always).
    assert linked and {code for _, code in linked} <= {"YC", "ZZ", "VS", "JJ"}
    assert len(steps) == 6 and "needs_analysis" in steps


async def test_the_past_sessions_were_held_and_credited(
    db: async_sessionmaker[AsyncSession],
) -> None:
    """Scans and stream readings make every kind of result a reviewer meets: present, late,
    partial by a short stay and by a branch's 45-minute outage, absent; credit follows."""
    await _seed(db)
    async with read_session(db) as session:
        results = Counter(
            (status, reason)
            for status, reason in (
                await session.execute(select(Attendance.status, Attendance.reason))
            ).all()
        )
        credited = await session.scalar(select(func.count()).select_from(TrainingRecord))
        down = await session.scalar(
            select(func.count()).select_from(StreamSample).where(StreamSample.state == "down")
        )
    assert results[("present", None)] > results[("absent", "no_checkin")] > 0
    assert results[("partial", "short_stay")] > 0 and results[("partial", "outage")] > 0
    assert credited == results[("present", None)] - await _repeats(db)
    assert down == 45 * 60 // 5  # one branch, 45 minutes, a reading every 5 s


async def _repeats(db: async_sessionmaker[AsyncSession]) -> int:
    async with read_session(db) as session:
        flags = (await session.scalars(select(Attendance.flags))).all()
    return sum(1 for found in flags if "repeat" in found)
