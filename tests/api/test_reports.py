"""The monthly report (月报告) on hand-built data: sessions scheduled, checked into by agents and
finalized through the real API, every figure checked by hand; bad input refused with nothing
written; stored snapshots keep their history; the clock keeps last month's report once."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Connection

from server.db.base import Base
from server.db.migrate import downgrade, upgrade
from server.db.models import AuditEntry, Organization, ReportSnapshot
from server.db.session import make_engine, read_session, write_session
from server.domain import validation as v
from server.domain.reports import (
    BAD_MONTH,
    FUTURE_MONTH,
    Month,
    coverage_pct,
    is_below_requirement,
    month_of,
    parse_month,
    runs_in_month,
    scaled_requirement,
)
from server.services import report_snapshots, reports
from server.settings import Settings
from server.workflow_clock import store_due_reports
from tests.support.clock_app import fast_clock
from tests.support.databases import PG_ENV, Db, fresh_pg_database
from tests.support.openapi_check import check
from tests.support.plan_rows import add_class
from tests.support.report_city import EN, REPORT, SPEC, TZ, City, build_city
from tests.support.world import World

SNAPSHOTS = "/api/v1/reports/monthly/snapshots"
ZERO = {
    "members_total": 0,
    "sessions_held": 0,
    "person_times": 0,
    "makeup_person_times": 0,
    "members_trained_month": 0,
    "members_trained_ytd": 0,
    "coverage_ytd_pct": 0.0,
    "untrained_ytd": 0,
    "below_requirement": 0,
    "repeat_blocked": 0,
    "partial_outage": 0,
    "conflicts": 0,
    "plan_progress": {"runs_planned": 0, "runs_held": 0},
    "children": [],
}


# --- the pure rules ---------------------------------------------------------------------------


def test_coverage_is_rounded_half_up_to_one_decimal() -> None:
    assert coverage_pct(1, 6) == Decimal("16.7")
    assert coverage_pct(2, 3) == Decimal("66.7")
    assert coverage_pct(1, 16) == Decimal("6.3")  # 6.25: half up, not to even
    assert coverage_pct(1, 8) == Decimal("12.5")
    assert coverage_pct(5, 5) == Decimal("100.0")
    assert coverage_pct(0, 0) == Decimal("0.0")  # no members: no division by zero


def test_the_requirement_is_pro_rated_to_the_months_end() -> None:
    march, january, december = Month(2026, 3), Month(2026, 1), Month(2026, 12)
    assert scaled_requirement(Decimal(32), march) == 3200 * 3
    # 32 学时 × 3 ÷ 12 = 8: exactly 8 is not below, 7.99 is.
    assert not is_below_requirement(Decimal(8), Decimal(32), march)
    assert is_below_requirement(Decimal("7.99"), Decimal(32), march)
    # 32 × 1 ÷ 12 = 2.666…: no rounding on the way.
    assert not is_below_requirement(Decimal("2.67"), Decimal(32), january)
    assert is_below_requirement(Decimal("2.66"), Decimal(32), january)
    assert is_below_requirement(Decimal("55.99"), Decimal(56), december)
    assert not is_below_requirement(Decimal(56), Decimal(56), december)


def test_months_follow_shanghai_calendar_boundaries() -> None:
    start, end = Month(2026, 3).bounds(TZ)
    assert start == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    assert Month(2026, 12).following() == Month(2027, 1)
    assert Month(2027, 1).previous() == Month(2026, 12)
    assert Month(2026, 3).year_starts(TZ) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    # 2026-03-31T16:30Z is already April 1 in Shanghai.
    assert month_of(datetime(2026, 3, 31, 16, 30, tzinfo=UTC), TZ) == Month(2026, 4)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("2026-13", BAD_MONTH),
        ("2026-00", BAD_MONTH),
        ("2026-1", BAD_MONTH),
        ("26-01", BAD_MONTH),
        ("abc", BAD_MONTH),
        ("2026-03-01", BAD_MONTH),
        ("1999-12", BAD_MONTH),
        (202603, BAD_MONTH),
        (None, v.REQUIRED),
        ("", v.REQUIRED),
    ],
)
def test_bad_months_are_named(raw: object, problem: str) -> None:
    problems = v.Problems()
    assert parse_month({"month": raw}, "month", problems) is None
    assert problems == {"month": problem}


# --- a city built through the API --------------------------------------------------------------


def figures(org: str, month: str, children: list[Any] | None = None, **values: Any) -> Any:
    """A report with every figure zero but those given."""
    runs = values.pop("runs_held", 0)
    return {
        "org": org,
        "month": month,
        **ZERO,
        **values,
        "plan_progress": {"runs_planned": 0, "runs_held": runs},
        "children": children or [],
    }


async def snapshot_rows(db: Db) -> tuple[int, int]:
    """(snapshots, audit entries): a refused request must leave both as they were."""
    async with read_session(db) as session:
        snapshots = await session.scalar(select(func.count()).select_from(ReportSnapshot))
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    return int(snapshots or 0), int(audited or 0)


async def test_every_figure_of_a_month(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    await city.move("MV", "a1a")  # after the year's sessions: reported where MV is now
    a = figures(
        "a",
        "2026-03",
        members_total=5,  # A1, A2, Z, MV in a1a; A3 in a1
        sessions_held=3,  # M1, M2, M3 (N was never held; AP is April's)
        person_times=6,  # M1: A1, A2, MV; M2: A1; M3: A1, A2
        members_trained_month=3,  # A1, A2, MV
        members_trained_ytd=3,
        coverage_ytd_pct=60.0,
        untrained_ytd=2,  # A3, Z
        # March: 32 × 3 ÷ 12 = 8 学时 (ordinary), 56 × 3 ÷ 12 = 14 (secretary, committee).
        # A1 has exactly 8 (J 3 + M1 3 + M2 2; M3 was a repeat, AP is April's): not below;
        # A2 3 < 14, Z 0 < 14, A3 0 < 8, MV 4 + 3 = 7 < 8.
        below_requirement=4,
        repeat_blocked=2,
        conflicts=1,
        runs_held=3,
    )
    b = figures(
        "b",
        "2026-03",
        members_total=1,
        sessions_held=2,  # B1 on the rosters of M1 and M2
        person_times=1,
        members_trained_month=1,
        members_trained_ytd=1,
        coverage_ytd_pct=100.0,
        below_requirement=1,  # B1: 3 < 8
        partial_outage=1,
    )
    c = figures("c", "2026-03")
    whole = figures(
        "city",
        "2026-03",
        [a, b, c],
        members_total=6,
        sessions_held=3,
        person_times=7,
        members_trained_month=4,
        members_trained_ytd=4,
        coverage_ytd_pct=66.7,
        untrained_ytd=2,
        below_requirement=5,
        repeat_blocked=2,
        partial_outage=1,
        conflicts=1,
        runs_held=3,
    )
    assert await city.report("city", "2026-03") == whole
    # Children sum up to their parent (no member sits directly in the city), sessions once.
    additive = [k for k in ZERO if k not in ("sessions_held", "coverage_ytd_pct", "children")]
    for key in additive:
        if key != "plan_progress":
            assert whole[key] == sum(child[key] for child in whole["children"]), key
    assert whole["sessions_held"] <= sum(ch["sessions_held"] for ch in whole["children"])
    # A child asked for itself answers its own figures, with its children one level down.
    a_alone = await city.report("a", "2026-03")
    assert {k: a_alone[k] for k in a if k != "children"} == {k: a[k] for k in a if k != "children"}
    assert [child["org"] for child in a_alone["children"]] == ["a1"]
    assert a_alone["children"][0]["members_total"] == 5
    # The county with no members: every figure zero, coverage 0.0.
    assert await city.report("c", "2026-03") == figures("c", "2026-03")


async def test_both_ways_of_reading_give_the_same_figures(
    client: Any, db: Db, world: World
) -> None:
    """A small subtree is read member by member, a large one in one pass: same answer."""
    city = await build_city(client, db, world)
    await city.move("MV", "a1a")
    for code in ("city", "a", "b", "a1a"):
        for month in ("2025-12", "2026-01", "2026-02", "2026-03", "2026-04"):
            async with read_session(db) as session:
                root = (
                    await session.execute(select(Organization).where(Organization.code == code))
                ).scalar_one()
                one_pass = await reports.report_for(
                    session, root, Month(*map(int, month.split("-"))), TZ, small_subtree=0
                )
            assert one_pass.as_json() == await city.report(code, month), (code, month)


async def test_months_before_and_after(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    await city.move("MV", "a1a")
    january = await city.report("city", "2026-01")
    assert {k: january[k] for k in ZERO if k != "children"} == {
        **{k: ZERO[k] for k in ZERO if k != "children"},
        "members_total": 6,
        "sessions_held": 1,
        "person_times": 1,
        "members_trained_month": 1,
        "members_trained_ytd": 1,
        "coverage_ytd_pct": 16.7,
        "untrained_ytd": 5,
        "below_requirement": 5,  # A1's 3 学时 ≥ 32 ÷ 12; everyone else has nothing
        "plan_progress": {"runs_planned": 0, "runs_held": 1},
    }
    # April 1 00:00 in Shanghai is April's, though it is March 31 in UTC.
    april = await city.report("city", "2026-04")
    assert (april["sessions_held"], april["person_times"], april["members_trained_month"]) == (
        1,
        1,
        1,
    )
    assert april["members_trained_ytd"] == 4
    # An empty month: nothing held, nobody trained, no division by zero anywhere.
    empty = await city.report("city", "2025-12")
    assert empty == figures(
        "city",
        "2025-12",
        [
            figures("a", "2025-12", members_total=5, untrained_ytd=5, below_requirement=5),
            figures("b", "2025-12", members_total=1, untrained_ytd=1, below_requirement=1),
            figures("c", "2025-12"),
        ],
        members_total=6,
        untrained_ytd=6,
        below_requirement=6,
    )


async def test_a_moved_member_counts_where_they_are_now(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    before = await city.report("city", "2026-02")
    a, b = before["children"][0], before["children"][1]
    # F (owned by b1): MV present, B1 absent; MV still belongs to b1.
    assert (b["members_total"], b["sessions_held"], b["person_times"]) == (2, 1, 1)
    assert (b["members_trained_month"], b["members_trained_ytd"]) == (1, 1)
    assert (a["members_total"], a["sessions_held"], a["person_times"]) == (4, 0, 0)
    await city.move("MV", "a1a")
    after = await city.report("city", "2026-02")
    a, b = after["children"][0], after["children"][1]
    # MV's February (and March walk-in) now count for county a, with all their hours.
    assert (a["members_total"], a["sessions_held"], a["person_times"]) == (5, 1, 1)
    assert (a["members_trained_month"], a["members_trained_ytd"]) == (1, 2)  # MV; A1 and MV
    assert (b["members_total"], b["sessions_held"], b["person_times"]) == (1, 1, 0)  # B1 absent
    assert (b["members_trained_month"], b["members_trained_ytd"]) == (0, 0)
    # The city as a whole is the same either way; the session's owner keeps its run.
    assert {k: v for k, v in after.items() if k != "children"} == {
        k: v for k, v in before.items() if k != "children"
    }
    assert b["plan_progress"] == {"runs_planned": 0, "runs_held": 1}
    march = await city.report("a", "2026-03")
    assert march["person_times"] == 6 and march["below_requirement"] == 4


async def test_scoped_callers_see_their_subtree_only(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    for role in ("admin", "operator", "reviewer"):
        mine = await city.report("a", "2026-03", {**world.auth(role, "a"), **EN})
        assert mine["members_total"] == 4  # MV still in b1
        theirs = await client.get(
            f"{REPORT}?org=a&month=2026-03", headers={**world.auth(role, "b"), **EN}
        )
        assert theirs.status == 404
        body = await theirs.json()
        assert body == {"error": {"code": "not_found", "message": "No organization with code a."}}
    # Asked of the city, a county user is as far as one whose code does not exist.
    outside = await client.get(f"{REPORT}?org=city&month=2026-03", headers=world.auth("reviewer"))
    unknown = await client.get(f"{REPORT}?org=zz&month=2026-03", headers=world.auth("reviewer"))
    assert (outside.status, unknown.status) == (404, 404)
    staff = await client.get(f"{REPORT}?org=a&month=2026-03", headers=world.auth("venue_staff"))
    assert staff.status == 403
    assert (await client.get(f"{REPORT}?org=a&month=2026-03")).status == 401


def next_month() -> str:
    return month_of(datetime.now(UTC), TZ).following().label


async def test_bad_input_is_refused_and_nothing_is_written(
    client: Any, db: Db, world: World
) -> None:
    city = await build_city(client, db, world)
    admin, future = city.admin, next_month()
    # (query, caller as role@subtree or None for the whole-tree admin, status, field problems)
    cases: list[tuple[str, str | None, int, dict[str, str] | None]] = [
        ("org=zz-nosuch&month=2026-03", None, 404, None),
        ("org=a&month=2026-13", None, 422, {"month": BAD_MONTH}),
        ("org=a&month=2026-1", None, 422, {"month": BAD_MONTH}),
        ("org=a&month=abc", None, 422, {"month": BAD_MONTH}),
        ("org=a", None, 422, {"month": v.REQUIRED}),
        ("month=2026-03", None, 422, {"org": v.REQUIRED}),
        ("org=a b&month=2026-03", None, 422, {"org": v.BAD_CODE}),
        (f"org=a&month={future}", None, 422, {"month": FUTURE_MONTH}),
        ("org=a&month=2026-03", "reviewer@b", 404, None),
        ("org=a&month=2026-03", "operator@b", 404, None),
        ("org=city&month=2026-03", "reviewer@a", 404, None),
        ("org=city&month=2026-03", "operator@a", 404, None),
    ]
    before = await snapshot_rows(db)
    for query, caller, status, fields in cases:
        headers = admin
        if caller is not None:
            role, subtree = caller.split("@")
            headers = {**world.auth(role, subtree), **EN}
        requests: list[tuple[str, str, dict[str, Any]]] = [("get", f"{REPORT}?{query}", {})]
        if caller is None or caller.startswith("operator"):  # a reviewer may not store (below)
            body = dict(part.split("=") for part in query.split("&"))
            requests.append(("post", SNAPSHOTS, {"json": body}))
        for method, path, kwargs in requests:
            answer = await check(client, SPEC, method, path, status, headers=headers, **kwargs)
            assert set(answer) == {"error"} and answer["error"]["message"], answer
            assert answer["error"].get("fields") == fields, (query, answer)
            assert await snapshot_rows(db) == before, f"{method} {query} wrote something"
    # The same problems in a snapshot listing (a future month may be asked: nothing is there).
    for query, status in (
        ("org=a&month=2026-13", 422),
        ("month=2026-03", 422),
        ("org=zz&month=2026-03", 404),
    ):
        await check(client, SPEC, "get", f"{SNAPSHOTS}?{query}", status, headers=admin)
    refused = (
        ({**world.auth("reviewer", "a"), **EN}, {"org": "a", "month": "2026-03"}, 403),
        ({**world.auth("venue_staff", "a"), **EN}, {"org": "a", "month": "2026-03"}, 403),
        (EN, {"org": "a", "month": "2026-03"}, 401),
        (admin, {"org": "a"}, 422),
        (admin, {"org": "a", "month": 202603}, 422),
    )
    for headers, json_body, status in refused:
        await check(client, SPEC, "post", SNAPSHOTS, status, headers=headers, json=json_body)
        assert await snapshot_rows(db) == before
    not_json = await client.post(SNAPSHOTS, headers=admin, data=b"org=a")
    assert not_json.status == 422
    assert await snapshot_rows(db) == before


async def test_snapshots_keep_their_history(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    operator = {**world.auth("operator", "a"), **EN}
    live = await city.report("a", "2026-03")
    first = await check(
        client,
        SPEC,
        "post",
        SNAPSHOTS,
        201,
        headers=operator,
        json={"org": "a", "month": "2026-03"},
    )
    assert (first["org"], first["month"], first["version"]) == ("a", "2026-03", 1)
    assert first["generated_by"] == "user:operator-a" and first["report"] == live
    # Something changes (MV moves into a1a) and the report is stored again: a new version,
    # the first kept exactly as it was.
    await city.move("MV", "a1a")
    second = await check(
        client,
        SPEC,
        "post",
        SNAPSHOTS,
        201,
        headers=city.admin,
        json={"org": "a", "month": "2026-03"},
    )
    assert second["version"] == 2 and second["generated_by"] == "user:root"
    assert second["report"]["members_total"] == 5 and first["report"]["members_total"] == 4
    other_month = await city.post(SNAPSHOTS, {"org": "a", "month": "2026-02"}, operator)
    assert other_month["version"] == 1
    listed = await check(
        client,
        SPEC,
        "get",
        f"{SNAPSHOTS}?org=a&month=2026-03",
        200,
        headers={**world.auth("reviewer", "a"), **EN},
    )
    assert listed["snapshots"] == [second, first]
    every = await check(client, SPEC, "get", f"{SNAPSHOTS}?org=a", 200, headers=operator)
    assert [(s["month"], s["version"]) for s in every["snapshots"]] == [
        ("2026-03", 2),
        ("2026-03", 1),
        ("2026-02", 1),
    ]
    # Another subtree sees none of it, as if the organization did not exist.
    hidden = await client.get(f"{SNAPSHOTS}?org=a", headers=world.auth("reviewer", "b"))
    assert hidden.status == 404
    async with read_session(db) as session:
        audited = (
            await session.execute(
                select(AuditEntry.actor, AuditEntry.object_type)
                .where(AuditEntry.action == "report.snapshot")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert audited == [
        ("user:operator-a", "report_snapshot"),
        ("user:root", "report_snapshot"),
        ("user:operator-a", "report_snapshot"),
    ]


async def test_concurrent_snapshots_take_distinct_versions(
    client: Any, db: Db, world: World
) -> None:
    await build_city(client, db, world)
    admin = {**world.auth("admin", "all"), **EN}
    answers = await asyncio.gather(
        *(
            client.post(SNAPSHOTS, headers=admin, json={"org": "city", "month": "2026-03"})
            for _ in range(5)
        )
    )
    assert [answer.status for answer in answers] == [201] * 5
    versions = sorted([(await answer.json())["version"] for answer in answers])
    assert versions == [1, 2, 3, 4, 5]


async def test_last_months_report_is_kept_once_for_top_level_organizations(
    client: Any, db: Db, world: World, settings: Settings
) -> None:
    await build_city(client, db, world)
    april_first = datetime(2026, 4, 1, 0, 5, tzinfo=TZ).astimezone(UTC)
    # Made today, the city has no report of any month before it.
    async with read_session(db) as session:
        assert (await report_snapshots.due_reports(session, TZ, april_first))[1] == []
    async with write_session(db) as session:
        await session.execute(
            update(Organization).values(created_at=datetime(2025, 12, 1, tzinfo=UTC))
        )
    async with read_session(db) as session:
        month, due = await report_snapshots.due_reports(session, TZ, april_first)
    assert (month.label, [org.code for org in due]) == ("2026-03", ["city"])
    assert await store_due_reports(db, "system", TZ, april_first) == ["city"]
    assert await store_due_reports(db, "system", TZ, april_first) == []
    listed = await client.get(f"{SNAPSHOTS}?org=city", headers=world.auth("admin", "all"))
    snapshots = (await listed.json())["snapshots"]
    assert [(s["month"], s["version"], s["generated_by"]) for s in snapshots] == [
        ("2026-03", 1, "system")
    ]
    assert snapshots[0]["report"] == await City(client, db, world, {}).report("city", "2026-03")
    # The server's own clock does the same for the month before today, once.
    expected = month_of(datetime.now(UTC), TZ).previous().label
    async with fast_clock(client, settings):
        for _ in range(200):
            async with read_session(db) as session:
                months = (
                    await session.execute(
                        select(ReportSnapshot.month).where(ReportSnapshot.month == expected)
                    )
                ).all()
            if months:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # more rounds: still one
    async with read_session(db) as session:
        kept = (
            await session.execute(
                select(
                    ReportSnapshot.month, ReportSnapshot.version, ReportSnapshot.generated_by
                ).where(ReportSnapshot.month == expected)
            )
        ).all()
    assert kept == [(expected, 1, "system")]


# --- the migration ------------------------------------------------------------------------------


def _tables_and_diffs(connection: Connection) -> tuple[set[str], list[Any]]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    ours = ("report_snapshots", "ix_members_org_id_category")
    diffs = [
        diff
        for diff in compare_metadata(context, Base.metadata)
        if any(name in repr(diff) for name in ours)
    ]
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    names |= {index["name"] or "" for index in inspector.get_indexes("members")}
    return names, diffs


async def _inspect(url: str) -> tuple[set[str], list[Any]]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        found = await connection.run_sync(_tables_and_diffs)
    await engine.dispose()
    return found


def _round_trip(url: str) -> None:
    tables, diffs = asyncio.run(_inspect(url))
    assert "report_snapshots" in tables and diffs == []
    downgrade(url, "0002")
    tables, _ = asyncio.run(_inspect(url))
    assert "report_snapshots" not in tables and "session_venues" in tables
    assert "ix_members_org_id_category" not in tables and "ix_members_name" in tables
    upgrade(url)
    tables, diffs = asyncio.run(_inspect(url))
    assert {"report_snapshots", "ix_members_org_id_category"} <= tables and diffs == []


def test_migration_0003_goes_down_and_up_on_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "migrate.sqlite3"
    shutil.copy(sqlite_template, path)
    _round_trip(f"sqlite+aiosqlite:///{path}")


def test_migration_0003_goes_down_and_up_on_postgresql() -> None:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_pg_database(url, "hetang_mig") as target:
        upgrade(target)
        _round_trip(target)


@pytest.mark.parametrize(
    ("runs", "months", "expected"),
    [
        (5, [3, 4, 5], {3: 2, 4: 2, 5: 1, 6: 0}),
        (1, [5, 3], {3: 1, 5: 0}),  # the earliest month takes the remainder, whatever the order
        (24, [], {1: 2, 12: 2}),  # no months named: spread over the year
        (0, [3], {3: 0}),
        (2, [3, 3, 13], {3: 2}),  # repeats and impossible months are ignored
    ],
)
def test_runs_of_a_class_are_spread_over_its_months(
    runs: int, months: list[int], expected: dict[int, int]
) -> None:
    assert {m: runs_in_month(runs, months, m) for m in expected} == expected


async def add_plan(db: Db, org_code: str, state: str, classes: list[tuple[int, list[int]]]) -> None:
    """A 2026 plan of the organization in a state, with classes of (runs planned, months)."""
    for index, (runs, months) in enumerate(classes):
        await add_class(
            db, org_code, 2026, f"C{index}", "计划", state=state, runs_planned=runs, months=months
        )


async def test_runs_planned_come_from_the_plans_in_force(client: Any, db: Db, world: World) -> None:
    city = await build_city(client, db, world)
    await add_plan(db, "a", "accepted", [(5, [3, 4, 5]), (12, [])])
    await add_plan(db, "a1", "filed", [(2, [3])])
    await add_plan(db, "b", "draft", [(9, [3])])  # not filed: counts for nothing
    await add_plan(db, "b1", "returned", [(9, [3])])  # sent back: nothing either
    march = await city.report("city", "2026-03")
    a, b = march["children"][0], march["children"][1]
    assert a["plan_progress"]["runs_planned"] == 2 + 1 + 2  # C0's March, C1's twelfth, a1's
    assert b["plan_progress"]["runs_planned"] == 0
    assert march["plan_progress"]["runs_planned"] == 5
    assert (await city.report("a", "2026-06"))["plan_progress"]["runs_planned"] == 1
    assert (await city.report("a", "2025-03"))["plan_progress"]["runs_planned"] == 0
