"""Training plans (培训计划备案): the rules of a plan's body and states, the API's whole flow with
what it stores and audits, every kind of bad input (nothing written), who may do what at which
level, the analysis (漏备案, planned vs members, 首课, progress) and runs_planned in reports."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import WHOLE_TREE
from server.db.models import (
    Attendance,
    AuditEntry,
    ClassStep,
    Member,
    Plan,
    PlanClass,
)
from server.db.session import read_session, write_session
from server.domain.members import MemberFields
from server.domain.plans import next_state, not_filed, parse_plan, reviews
from server.domain.reports import coverage_pct
from server.services import members
from tests.support.client import Client
from tests.support.matrix_seed import make_session, seed_matrix
from tests.support.openapi_check import check, load_spec
from tests.support.world import World

Db = async_sessionmaker[AsyncSession]
API = "/api/v1/plans"
EN = {"Accept-Language": "en"}


def a_class(**changes: Any) -> dict[str, Any]:
    """A class of a plan, as the API takes it."""
    return {
        "code": "C01",
        "title": "政治理论首课",
        "runs_planned": 2,
        "trainees_planned": 1,
        "hours_per_run": 1.5,
        "topics": ["ZZ-2026"],
        "months": [3, 4],
        "target_categories": ["ordinary"],
        "target_org_codes": ["a1a"],
        "first_lesson": True,
        **changes,
    }


def a_plan(org: str = "a1", year: int = 2026, **changes: Any) -> dict[str, Any]:
    """A new plan, as the API takes it."""
    return {
        "org_code": org,
        "year": year,
        "title": "西泉镇2026年党员培训计划",
        "classes": [a_class(), a_class(code="C02", title="业务班", first_lesson=False)],
        **changes,
    }


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


async def counts(db: Db) -> tuple[int, int, int]:
    """Plans, plan classes and audit entries stored."""
    async with read_session(db) as session:
        found = [
            int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Plan, PlanClass, AuditEntry)
        ]
    return found[0], found[1], found[2]


async def last_audit(db: Db) -> AuditEntry:
    async with read_session(db) as session:
        entry = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    assert entry is not None
    return entry


# --- the pure rules ---------------------------------------------------------------------------


def test_a_good_plan_parses() -> None:
    fields, problems = parse_plan(a_plan())
    assert not problems and fields is not None
    first = fields.body.classes[0]
    assert (first.runs_planned, first.hours_per_run, first.months) == (2, Decimal("1.5"), (3, 4))
    assert fields.body.to_json()["classes"][0] == a_class()


BAD_INPUT = [
    ({"year": 1999}, "year"),
    ({"year": 2100}, "year"),  # LAST_YEAR is 2099
    ({"year": "soon"}, "year"),
    ({"org_code": "no spaces allowed"}, "org_code"),
    ({"title": ""}, "title"),
    ({"classes": {"C01": {}}}, "classes"),
    ({"classes": ["C01"]}, "classes[0]"),
    ({"classes": [a_class(runs_planned=-1)]}, "classes[0].runs_planned"),
    ({"classes": [a_class(runs_planned=1001)]}, "classes[0].runs_planned"),
    ({"classes": [a_class(runs_planned=2.5)]}, "classes[0].runs_planned"),
    ({"classes": [a_class(runs_planned=True)]}, "classes[0].runs_planned"),
    ({"classes": [a_class(trainees_planned=-5)]}, "classes[0].trainees_planned"),
    ({"classes": [a_class(trainees_planned=1_000_001)]}, "classes[0].trainees_planned"),
    ({"classes": [a_class(hours_per_run=0)]}, "classes[0].hours_per_run"),
    ({"classes": [a_class(hours_per_run=-2)]}, "classes[0].hours_per_run"),
    ({"classes": [a_class(hours_per_run=200.5)]}, "classes[0].hours_per_run"),
    ({"classes": [a_class(hours_per_run=1.125)]}, "classes[0].hours_per_run"),
    ({"classes": [a_class(hours_per_run="NaN")]}, "classes[0].hours_per_run"),
    ({"classes": [a_class(months=[0])]}, "classes[0].months"),
    ({"classes": [a_class(months=[13])]}, "classes[0].months"),
    ({"classes": [a_class(months=[3, 3])]}, "classes[0].months"),
    ({"classes": [a_class(months="3")]}, "classes[0].months"),
    ({"classes": [a_class(), a_class()]}, "classes[1].code"),
    ({"classes": [a_class(target_categories=["cadre"])]}, "classes[0].target_categories"),
    ({"classes": [a_class(topics=["ok", "not ok"])]}, "classes[0].topics"),
    ({"classes": [a_class(first_lesson="yes")]}, "classes[0].first_lesson"),
    ({"classes": [a_class(code="")]}, "classes[0].code"),
    ({"classes": [a_class()] * 101}, "classes"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_INPUT)
def test_bad_plans_name_the_field(changes: dict[str, Any], field: str) -> None:
    fields, problems = parse_plan(a_plan(**changes))
    assert fields is None and field in problems, problems


def test_states_and_who_reviews() -> None:
    assert next_state("file", "draft") == next_state("file", "returned") == "filed"
    assert next_state("file", "filed") is None and next_state("file", "accepted") is None
    assert next_state("accept", "filed") == "accepted" and next_state("accept", "draft") is None
    assert next_state("return", "filed") == "returned"
    assert next_state("return", "accepted") is None
    # /1/ city, /1/2/ county, /1/2/3/ committee
    assert reviews("/1/", "/1/")  # the city reviews a county (parent /1/)
    assert reviews("/1/2/", "/1/2/")  # the county reviews its committee
    assert not reviews("/1/2/3/", "/1/2/")  # the committee does not review itself
    assert not reviews("/1/", None)  # the city's own plan: the whole tree only
    assert not reviews("/1/", "/1/2/")  # never two levels above: the county reviews its own
    assert reviews(None, None) and reviews(None, "/1/") and reviews(None, "/1/2/")
    assert not_filed({"a": None, "b": "draft", "c": "filed", "d": "accepted", "e": "returned"}) == [
        "a",
        "b",
        "e",
    ]


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_percent_is_bounded_and_rounded(part: int, whole: int) -> None:
    """The plan's progress figures use the reports' percentage (coverage_pct)."""
    value = float(coverage_pct(part, whole))
    assert value == round(value, 1)
    if whole == 0:
        assert value == 0.0
    elif part <= whole:
        assert 0.0 <= value <= 100.0
    assert [float(coverage_pct(part, 3)) for part in (1, 2)] == [33.3, 66.7]
    assert float(coverage_pct(1, 8)) == 12.5


# --- the API ----------------------------------------------------------------------------------


async def test_a_plan_is_created_edited_filed_returned_refiled_and_accepted(
    client: Client,
    db: Db,
    world: World,
    spec: dict[str, Any],
) -> None:
    admin, reviewer = world.auth("admin", "a"), world.auth("reviewer", "a")
    created = await check(client, spec, "post", API, 201, headers=admin, json=a_plan())
    assert (created["state"], created["org_name"], created["filed_at"]) == (
        "draft",
        "西泉镇党委",
        None,
    )
    assert [c["code"] for c in created["classes"]] == ["C01", "C02"]
    assert created["classes"][0] == a_class()
    entry = await last_audit(db)
    assert (entry.action, entry.object_id, entry.actor) == (
        "plan.create",
        "a1/2026",
        "user:admin-a",
    )
    assert json.loads(entry.after or "{}")["classes"][1]["code"] == "C02"
    one = f"{API}/a1/2026"
    assert (
        await check(client, spec, "get", one, 200, headers=world.auth("operator", "a")) == created
    )
    await check(client, spec, "post", API, 409, headers=admin, json=a_plan())

    # Edit in draft: C01 keeps its row, C02 goes, C03 comes.
    async with read_session(db) as session:
        c01 = await session.scalar(select(PlanClass.id).where(PlanClass.code == "C01"))
    body = {
        "title": "新标题",
        "classes": [a_class(runs_planned=3), a_class(code="C03", title="三")],
    }
    edited = await check(client, spec, "put", one, 200, headers=admin, json=body)
    assert edited["title"] == "新标题" and [c["code"] for c in edited["classes"]] == ["C01", "C03"]
    async with read_session(db) as session:
        rows = dict((await session.execute(select(PlanClass.code, PlanClass.id))).all())
    assert rows["C01"] == c01 and "C02" not in rows
    entry = await last_audit(db)
    assert entry.action == "plan.update"
    assert json.loads(entry.before or "{}")["title"] == "西泉镇2026年党员培训计划"

    await check(client, spec, "post", f"{one}/accept", 409, headers=reviewer)  # not filed
    await check(client, spec, "post", f"{one}/file", 403, headers=reviewer)  # reviewers do not
    await check(client, spec, "post", f"{one}/file", 403, headers=world.auth("operator", "a"))
    filed = await check(client, spec, "post", f"{one}/file", 200, headers=admin)
    assert filed["state"] == "filed" and filed["filed_by"] == "user:admin-a"
    assert (await last_audit(db)).action == "plan.file"
    await check(client, spec, "post", f"{one}/file", 409, headers=admin)
    await check(client, spec, "put", one, 409, headers=admin, json=body)

    # Returning needs a comment, of at most 1000 characters; nothing changes without one.
    before = await counts(db)
    for bad in ({}, {"comment": "  "}, {"comment": "x" * 1001}):
        answer = await client.post(f"{one}/return", headers={**reviewer, **EN}, json=bad)
        text = await answer.text()
        assert answer.status == 422 and "comment" in json.loads(text)["error"]["fields"], text
    assert await counts(db) == before
    comment = "请补充首课安排"
    returned = await check(
        client, spec, "post", f"{one}/return", 200, headers=reviewer, json={"comment": comment}
    )
    assert (returned["state"], returned["review_comment"]) == ("returned", comment)
    entry = await last_audit(db)
    assert (entry.action, json.loads(entry.after or "{}")) == (
        "plan.return",
        {"state": "returned", "comment": comment},
    )
    await check(client, spec, "post", f"{one}/accept", 409, headers=reviewer)
    # Edited and filed again (the old review is the audit trail's now), then accepted.
    await check(client, spec, "put", one, 200, headers=admin, json=body)
    refiled = await check(client, spec, "post", f"{one}/file", 200, headers=admin)
    assert (refiled["review_comment"], refiled["reviewed_by"], refiled["reviewed_at"]) == (
        None,
        None,
        None,
    )
    accepted = await check(client, spec, "post", f"{one}/accept", 200, headers=reviewer)
    assert accepted["state"] == "accepted" and accepted["reviewed_by"] == "user:reviewer-a"
    assert (await last_audit(db)).action == "plan.accept"
    await check(client, spec, "post", f"{one}/return", 409, headers=reviewer, json={"comment": "x"})


async def test_bad_input_is_422_per_field_and_writes_nothing(
    client: Client,
    db: Db,
    world: World,
) -> None:
    admin = {**world.auth("admin", "a"), **EN}
    before = await counts(db)
    wrong: list[str] = []
    cases = [
        *[(a_plan(**changes), field) for changes, field in BAD_INPUT],
        (a_plan(org="nosuch"), "org_code"),
        (a_plan(org="b1"), "org_code"),  # another subtree: as unknown
        (a_plan(org="a1a"), "org_code"),  # a branch files no plan
        (a_plan(classes=[a_class(target_org_codes=["b1"])]), "classes[0].target_org_codes"),
        (a_plan(classes=[a_class(target_org_codes=["zz"])]), "classes[0].target_org_codes"),
        (
            a_plan(org="a1", classes=[a_class(target_org_codes=["a"])]),
            "classes[0].target_org_codes",
        ),
    ]
    for body, field in cases:
        answer = await client.post(API, headers=admin, json=body)
        error = (await answer.json())["error"]
        if answer.status != 422 or error["code"] != "invalid" or field not in error["fields"]:
            wrong.append(f"{body} → {answer.status} {error}")
    assert not wrong, "\n".join(wrong)
    assert await counts(db) == before
    unknown = await client.post(API, headers=admin, json=a_plan(org="nosuch"))
    other = await client.post(API, headers=admin, json=a_plan(org="b1"))
    assert (await unknown.text()).replace("nosuch", "X") == (await other.text()).replace("b1", "X")
    # The same rules for an edit, and nothing changes.
    created = await client.post(API, headers=admin, json=a_plan())
    assert created.status == 201
    before = await counts(db)
    for changes, field in BAD_INPUT[4:]:
        answer = await client.put(f"{API}/a1/2026", headers=admin, json=a_plan(**changes))
        assert answer.status == 422 and field in (await answer.json())["error"]["fields"]
    assert await counts(db) == before
    for path in (f"{API}/a1/1999", f"{API}/a1/year", f"{API}/a1/2027"):
        assert (await client.get(path, headers=admin)).status == 404
    for query in ("?year=20x6", "?year=1999"):
        assert (await client.get(f"{API}{query}", headers=admin)).status == 422
    analysis = await client.get(f"{API}/analysis?org=a1", headers=admin)
    assert analysis.status == 422 and "year" in (await analysis.json())["error"]["fields"]


async def test_other_subtrees_see_nothing_and_levels_review_the_level_below(
    client: Client,
    db: Db,
    world: World,
    spec: dict[str, Any],
) -> None:
    admin, root = world.auth("admin", "a"), world.auth("admin", "all")
    for org in ("a1", "a"):
        assert (await client.post(API, headers=admin, json=a_plan(org=org))).status == 201
        assert (await client.post(f"{API}/{org}/2026/file", headers=admin)).status == 200
    city = a_plan(org="city", classes=[a_class(target_org_codes=["b1"])])
    assert (await client.post(API, headers=root, json=city)).status == 201
    assert (await client.post(f"{API}/city/2026/file", headers=root)).status == 200
    before = await counts(db)

    # Subtree b: what its role may do answers as for a plan that does not exist; the rest, 403.
    requests = (
        ("GET", "", None, {"admin", "reviewer", "operator"}),
        ("PUT", "", {"title": "乙", "classes": []}, {"admin"}),
        ("POST", "/file", None, {"admin"}),
        ("POST", "/accept", None, {"admin", "reviewer"}),
        ("POST", "/return", {"comment": "乙"}, {"admin", "reviewer"}),
    )
    for role in ("admin", "reviewer", "operator"):
        other = {**world.auth(role, "b"), **EN}
        for method, suffix, body, allowed in requests:
            seen = await client.request(method, f"{API}/a1/2026{suffix}", headers=other, json=body)
            text = await seen.text()
            if role not in allowed:
                assert seen.status == 403, (role, method, suffix, text)
                continue
            unknown = await client.request(
                method, f"{API}/zz/2026{suffix}", headers=other, json=body
            )
            assert seen.status == 404, (role, method, suffix, text)
            assert text.replace("a1", "X") == (await unknown.text()).replace("zz", "X")
        listed = await check(client, spec, "get", API, 200, headers=other)
        assert listed["plans"] == []
        await check(client, spec, "get", f"{API}/analysis?org=a&year=2026", 404, headers=other)
    assert await counts(db) == before

    # The county reviews its committee; not its own plan (403), which the city reviews.
    reviewer = {**world.auth("reviewer", "a"), **EN}
    own = await client.post(f"{API}/a/2026/accept", headers=reviewer)
    error = (await own.json())["error"]
    assert (own.status, error["code"]) == (403, "forbidden")
    assert error["message"] == "Only the level above a reviews its plan."
    assert (await client.post(f"{API}/a/2026/accept", headers=admin)).status == 403
    assert await counts(db) == before
    assert (await client.post(f"{API}/a1/2026/accept", headers=reviewer)).status == 200
    assert (await client.post(f"{API}/a/2026/accept", headers=root)).status == 200
    # The city's plan: nobody below the whole tree sees it, and only the whole tree reviews it.
    assert (await client.get(f"{API}/city/2026", headers=reviewer)).status == 404
    assert (await client.post(f"{API}/city/2026/accept", headers=root)).status == 200
    states = {
        p["org_code"]: p["state"]
        for p in (await (await client.get(API, headers=root)).json())["plans"]
    }
    assert states == {"city": "accepted", "a": "accepted", "a1": "accepted"}
    mine = await check(client, spec, "get", f"{API}?year=2026&org=a1", 200, headers=reviewer)
    assert [p["org_code"] for p in mine["plans"]] == ["a1"]
    assert (await (await client.get(f"{API}?year=2025", headers=root)).json())["plans"] == []
    for role in ("venue_staff",):
        assert (await client.get(API, headers=world.auth(role, "a"))).status == 403


async def test_the_analysis_and_runs_planned(
    client: Client,
    db: Db,
    world: World,
    spec: dict[str, Any],
) -> None:
    await seed_matrix(db)  # M-A-1 (ordinary) in a1a, M-B-1 in b1, venues, sessions, plans
    async with write_session(db) as session:
        for number, category in (("M-A-2", "secretary"), ("M-A-3", "ordinary")):
            await members.create_member(
                session, WHOLE_TREE, "test", MemberFields(number, "党员", "a1a", category, None)
            )
    admin, root = world.auth("admin", "a"), world.auth("admin", "all")
    body = a_plan(
        classes=[
            a_class(trainees_planned=5),  # ordinary members of a1a: 2
            a_class(code="C02", first_lesson=False, target_categories=[], target_org_codes=[]),
        ]
    )
    # The seed holds a draft 2026 plan of a1: it becomes this one.
    assert (await client.put(f"{API}/a1/2026", headers=admin, json=body)).status == 200
    # Two runs of C01 held (finalized), one still scheduled; M-A-1 present in both.
    for state in ("finalized", "approved", "scheduled"):
        await make_session(db, state, plan_class="a1/2026/C01")
    async with write_session(db) as session:
        member = await session.scalar(select(Member.id).where(Member.member_no == "M-A-1"))
        await session.execute(
            update(Attendance).where(Attendance.member_id == member).values(status="present")
        )
    path = f"{API}/analysis?org=a1&year=2026"
    result = await check(client, spec, "get", path, 200, headers=world.auth("operator", "a"))
    assert result["state"] == "draft" and result["members"] == 3
    assert result["children"] == [] and result["not_filed"] == []  # only a branch below a1
    c1, c2 = result["classes"]
    assert (c1["runs_planned"], c1["runs_held"], c1["runs_pct"]) == (2, 2, 100.0)
    assert (c1["trainees_planned"], c1["members"], c1["trainees_reached"]) == (5, 2, 1)
    assert c1["trainees_pct"] == 20.0
    assert (c2["members"], c2["runs_held"], c2["trainees_reached"]) == (3, 0, 0)
    assert result["without_first_lesson"] == ["C02"]
    assert result["totals"] == {
        "runs_planned": 4,
        "runs_held": 2,
        "trainees_planned": 6,
        "trainees_reached": 1,
    }
    # The county: its committee has a draft only, so it has not filed (漏备案).
    county = await check(client, spec, "get", f"{API}/analysis?org=a&year=2026", 200, headers=admin)
    assert county["state"] == "none" and county["classes"] == []
    assert county["children"] == [
        {"org_code": "a1", "org_name": "西泉镇党委", "level": "committee", "state": "draft"}
    ]
    assert county["not_filed"] == ["a1"]
    city = await check(client, spec, "get", f"{API}/analysis?org=city&year=2026", 200, headers=root)
    assert [c["org_code"] for c in city["children"]] == ["a", "b"]
    assert city["not_filed"] == ["a", "b"]

    # The monthly report's runs_planned counts filed and accepted plans only: each class's two
    # runs fall one in March and one in April.
    async def planned(org: str, month: str) -> int:
        answer = await client.get(f"/api/v1/reports/monthly?org={org}&month={month}", headers=root)
        return int((await answer.json())["plan_progress"]["runs_planned"])

    assert await planned("a1", "2026-03") == 0
    assert (await client.post(f"{API}/a1/2026/file", headers=admin)).status == 200
    assert [await planned("a1", m) for m in ("2026-02", "2026-03", "2026-04")] == [0, 2, 2]
    assert await planned("city", "2026-03") == 2 and await planned("b", "2026-03") == 0
    county = await (await client.get(f"{API}/analysis?org=a&year=2026", headers=admin)).json()
    assert county["not_filed"] == []


async def test_a_class_with_runs_or_steps_done_stays_in_the_plan(
    client: Client,
    db: Db,
    world: World,
    spec: dict[str, Any],
) -> None:
    """An edit that drops a class some session is a run of, or whose workflow has begun, is
    refused (409) and changes nothing; a class with neither may go."""
    admin = world.auth("admin", "a")
    await check(client, spec, "post", API, 201, headers=admin, json=a_plan())
    one = f"{API}/a1/2026"
    async with write_session(db) as session:
        c01 = await session.scalar(select(PlanClass.id).where(PlanClass.code == "C01"))
        session.add(ClassStep(class_id=c01, step_key="needs_analysis", done=True))
    before = await counts(db)
    only_c02 = {"title": "新标题", "classes": [a_class(code="C02")]}
    await check(client, spec, "put", one, 409, headers=admin, json=only_c02)
    assert await counts(db) == before
    only_c01 = {"title": "新标题", "classes": [a_class()]}
    kept = await check(client, spec, "put", one, 200, headers=admin, json=only_c01)
    assert [c["code"] for c in kept["classes"]] == ["C01"]
