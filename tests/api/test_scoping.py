"""Issue 11: nobody credits, names or confirms members, venues or organizations outside their
subtree. A county's roster holds its own members only; a walk-in from outside the session's
organizations is kept but not credited until a reviewer whose scope holds the member accepts it;
409s for taken codes do not confirm what exists in another county."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, select

from server.auth.principal import Scope
from server.db.base import Base
from server.db.models import (
    Attendance,
    AuditEntry,
    CheckIn,
    Member,
    Organization,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.db.session import make_engine, read_session, write_session
from server.domain.attendance import (
    CheckInEvent,
    Policy,
    SessionInput,
    compute,
    outside_walk_ins,
)
from server.errors import Conflict
from server.services import users, workflow
from server.settings import Settings
from tests.support.api_site import counts
from tests.support.browser import Browser, add_user
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.scoping_city import EN, at, rostered, scheduled_with_a1, seed, session_body
from tests.support.session_form import session_form
from tests.support.world import World

SPEC = load_spec()
UNKNOWN = "names unknown members"
YEAR = 2026


async def scans(client: Client, token: str, session_id: str, *who: str) -> list[str]:
    """Agents' sign-ins at 09:00 (by member number, the last one by card), their statuses."""
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "session_id": session_id,
            "kind": "in",
            "at": at(9),
            "source": "scanner",
            **({"card_code": f"card-{number}"} if i == len(who) - 1 else {"member_no": number}),
        }
        for i, number in enumerate(who)
    ]
    answer = await client.post(
        "/api/v1/agent/checkins",
        headers={"Authorization": f"Bearer {token}"},
        json={"sent_at": datetime.now(UTC).isoformat(), "events": events},
    )
    assert answer.status == 200, await answer.text()
    return [result["status"] for result in (await answer.json())["results"]]


async def record(client: Client, world: World, number: str) -> Any:
    """The member's 2026 record as 天长市's reviewer sees it."""
    answer = await client.get(
        f"/api/v1/members/{number}/record?year={YEAR}", headers=world.auth("reviewer", "b")
    )
    assert answer.status == 200, await answer.text()
    return await answer.json()


async def held_with_walk_ins(client: Client, world: World) -> tuple[str, dict[str, str]]:
    """凤阳县's operator schedules A1 at FY; FY's agent signs in A1 and, on no roster, the
    天长市 members B2 and B3; the session is started and ended (not yet finalized)."""
    tokens = await seed(client, world)
    operator = world.auth("operator", "a")
    created = await client.post(
        "/api/v1/sessions", headers=operator, json=session_body([("A1", "FY")])
    )
    assert created.status == 201, await created.text()
    session_id: str = (await created.json())["id"]
    # Kept, never dropped: the agent is told they were accepted.
    assert await scans(client, tokens["FY"], session_id, "A1", "B2", "B3") == ["accepted"] * 3
    for action in ("start", "end"):
        answer = await client.post(f"/api/v1/sessions/{session_id}/{action}", headers=operator)
        assert answer.status == 200, await answer.text()
    return session_id, tokens


async def credited(db: Db) -> dict[str, str]:
    """Training records by member number: their hours."""
    async with read_session(db) as session:
        rows = await session.execute(
            select(Member.member_no, TrainingRecord.credit_hours).join(
                TrainingRecord, TrainingRecord.member_id == Member.id
            )
        )
        return {number: f"{hours:.2f}" for number, hours in rows}


async def assert_walk_ins_kept_but_not_credited(
    client: Client, world: World, db: Db, session_id: str, before: dict[str, Any]
) -> None:
    # The city's admin sees every line: B2 and B3 are there, present, flagged and not credited.
    body = await check(
        client,
        SPEC,
        "get",
        f"/api/v1/sessions/{session_id}/attendance",
        200,
        headers=world.auth("admin", "all"),
    )
    lines = {m["member_no"]: m for m in body["members"]}
    assert set(lines) == {"A1", "B2", "B3"}
    assert (lines["A1"]["status"], lines["A1"]["credit_hours"], lines["A1"]["flags"]) == (
        "present",
        3,
        [],
    )
    for number in ("B2", "B3"):
        line = lines[number]
        assert (line["status"], line["credit_hours"]) == ("present", 0), line
        assert line["flags"] == ["outside_scope", "walk_in"], line
    assert await credited(db) == {"A1": "3.00"}
    async with read_session(db) as session:
        stored = await session.scalar(select(func.count()).select_from(CheckIn))
        flags = dict(
            (
                await session.execute(
                    select(Member.member_no, Attendance.flags).join(
                        Attendance, Attendance.member_id == Member.id
                    )
                )
            ).all()
        )
    assert stored == 3  # every check-in stored
    assert sorted(flags["B2"]) == ["outside_scope", "walk_in"]
    for number in ("B2", "B3"):
        assert await record(client, world, number) == before[number]
        assert before[number]["earned_hours"] == 0 and before[number]["entries"] == []


# --- 1. Credit for members outside one's subtree ------------------------------------------------


async def test_a_roster_naming_a_member_of_another_county_is_refused(
    client: Client, world: World, db: Db
) -> None:
    await seed(client, world)
    operator = {**world.auth("operator", "a"), **EN}
    before = await counts(db)
    answers = {}
    for number in ("B1", "NOBODY"):
        answer = await client.post(
            "/api/v1/sessions",
            headers=operator,
            json=session_body([("A1", "FY"), (number, "FY")]),
        )
        assert answer.status == 422, await answer.text()
        error = (await answer.json())["error"]
        answers[number] = error
    assert await counts(db) == before  # nothing stored, nothing audited
    # "Exists elsewhere" and "does not exist" answer alike, and the name never appears.
    assert answers["B1"]["fields"] == answers["NOBODY"]["fields"] == {"roster": UNKNOWN}
    assert answers["B1"]["message"].replace("B1", "?") == answers["NOBODY"]["message"].replace(
        "NOBODY", "?"
    )
    assert "天长" not in str(answers["B1"])


async def test_an_edit_cannot_add_a_member_of_another_county(
    client: Client, world: World, db: Db
) -> None:
    session_id, operator = await scheduled_with_a1(client, world)
    answer = await client.put(
        f"/api/v1/sessions/{session_id}",
        headers=operator,
        json=session_body([("A1", "FY"), ("B1", "FY")]),
    )
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["error"]["fields"] == {"roster": UNKNOWN}
    assert await rostered(db) == ["A1"]
    # The agent's schedule carries no name of another county.
    schedule = await client.get(
        "/api/v1/agent/schedule",
        headers={"Authorization": f"Bearer {(await seed_token(client, world, 'FY'))}"},
    )
    assert "天长" not in await schedule.text()


async def seed_token(client: Client, world: World, venue: str) -> str:
    """A fresh token of the venue (rotated by the city's admin)."""
    answer = await client.post(f"/api/v1/venues/{venue}/token", headers=world.auth("admin", "all"))
    assert answer.status == 200, await answer.text()
    token: str = (await answer.json())["token"]
    return token


async def test_a_whole_tree_admin_and_a_county_may_roster_their_own(
    client: Client, world: World
) -> None:
    await seed(client, world)
    root = world.auth("admin", "all")
    joint = session_body([("A1", "FY"), ("B1", "TC")], branch_venues=["TC"])
    answer = await client.post("/api/v1/sessions", headers=root, json=joint)
    assert answer.status == 201, await answer.text()
    own = session_body([("B1", "TC")], main_venue="TC")
    answer = await client.post("/api/v1/sessions", headers=world.auth("operator", "b"), json=own)
    assert answer.status == 201, await answer.text()


async def test_walk_ins_from_another_county_are_kept_but_not_credited(
    client: Client, world: World, db: Db
) -> None:
    session_id, _ = await held_with_walk_ins(client, world)
    before = {number: await record(client, world, number) for number in ("B2", "B3")}
    reviewer = world.auth("reviewer", "a")
    answer = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert answer.status == 200, await answer.text()
    await assert_walk_ins_kept_but_not_credited(client, world, db, session_id, before)
    # Finalizing again changes nothing.
    async with read_session(db) as session:
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    answer = await client.post(f"/api/v1/sessions/{session_id}/finalize", headers=reviewer)
    assert answer.status == 200, await answer.text()
    async with read_session(db) as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == audited
    # 凤阳县's own reviewers see their own member's line only (as for any joint session).
    mine = await client.get(f"/api/v1/sessions/{session_id}/attendance", headers=reviewer)
    assert [m["member_no"] for m in (await mine.json())["members"]] == ["A1"]


async def test_the_clock_finalizes_without_crediting_them(
    client: Client, world: World, db: Db, settings: Settings
) -> None:
    session_id, _ = await held_with_walk_ins(client, world)
    before = {number: await record(client, world, number) for number in ("B2", "B3")}
    later = datetime.now(UTC) + timedelta(minutes=31)
    async with read_session(db) as session:
        assert await workflow.due_actions(session, later) == [(session_id, "finalize")]
    async with write_session(db) as session:
        await workflow.run_due(session, session_id, "finalize", settings.tz, later)
    async with read_session(db) as session:
        state = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == session_id)
        )
    assert state == "finalized"
    await assert_walk_ins_kept_but_not_credited(client, world, db, session_id, before)


async def joint_session(client: Client, world: World) -> tuple[str, dict[str, str]]:
    """凤阳县's session at FY with 天长市's venue TC as a branch (no stream check): TC's agent
    signs in B2, FY's agent B3 — neither on the roster; finalized by 凤阳县's reviewer."""
    tokens = await seed(client, world)
    body = session_body(
        [("A1", "FY")], branch_venues=["TC"], policy={"require_stream_verification": False}
    )
    created = await client.post("/api/v1/sessions", headers=world.auth("operator", "a"), json=body)
    assert created.status == 201, await created.text()
    session_id: str = (await created.json())["id"]
    assert await scans(client, tokens["TC"], session_id, "B2") == ["accepted"]
    assert await scans(client, tokens["FY"], session_id, "A1", "B3") == ["accepted"] * 2
    for action, who in (("start", "operator"), ("end", "operator"), ("finalize", "reviewer")):
        answer = await client.post(
            f"/api/v1/sessions/{session_id}/{action}", headers=world.auth(who, "a")
        )
        assert answer.status == 200, await answer.text()
    return session_id, tokens


async def lines_of(client: Client, headers: dict[str, str], session_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/sessions/{session_id}/attendance", headers=headers)
    assert answer.status == 200, await answer.text()
    return {m["member_no"]: m for m in (await answer.json())["members"]}


async def test_a_branch_venue_vouches_for_its_own_organizations_members(
    client: Client, world: World, db: Db
) -> None:
    session_id, _ = await joint_session(client, world)
    lines = await lines_of(client, world.auth("admin", "all"), session_id)
    # B2 was signed in by 天长市's own venue: credited as any walk-in. B3 was signed in by
    # 凤阳县's venue: kept, not credited.
    assert (lines["B2"]["credit_hours"], lines["B2"]["flags"]) == (3, ["walk_in"])
    assert (lines["B3"]["credit_hours"], lines["B3"]["flags"]) == (0, ["outside_scope", "walk_in"])
    assert await credited(db) == {"A1": "3.00", "B2": "3.00"}


async def test_a_reviewer_whose_scope_holds_the_member_accepts_the_credit(
    client: Client, world: World, db: Db
) -> None:
    session_id, _ = await joint_session(client, world)
    accept = f"/api/v1/sessions/{session_id}/attendance/B3/accept"
    # The organizer's side may not credit a member outside its subtree: to it, B3 is unknown.
    before = await counts(db)
    for role in ("reviewer", "admin"):
        answer = await client.post(accept, headers={**world.auth(role, "a"), **EN})
        assert answer.status == 404, await answer.text()
    # Operators do not accept; neither does anyone before finalization or after approval.
    answer = await client.post(accept, headers=world.auth("operator", "b"))
    assert answer.status == 403, await answer.text()
    assert await counts(db) == before
    # 天长市's reviewer sees the joint session (its venue TC is a branch), and B3's line.
    reviewer_b = {**world.auth("reviewer", "b"), **EN}
    assert (await lines_of(client, reviewer_b, session_id))["B3"]["flags"] == [
        "outside_scope",
        "walk_in",
    ]
    body = await check(client, SPEC, "post", accept, 200, headers=reviewer_b)
    line = {m["member_no"]: m for m in body["members"]}["B3"]
    assert (line["status"], line["credit_hours"], line["flags"]) == ("present", 3, ["walk_in"])
    assert await credited(db) == {"A1": "3.00", "B2": "3.00", "B3": "3.00"}
    b3 = await record(client, world, "B3")
    assert b3["earned_hours"] == 3 and [e["session_id"] for e in b3["entries"]] == [session_id]
    async with read_session(db) as session:
        audited = (
            await session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.object_id).where(
                    AuditEntry.action.in_(("attendance.accept", "record.credit")),
                    AuditEntry.object_id.like("%/B3"),
                )
            )
        ).all()
    target = f"{session_id}/B3"
    assert sorted(audited) == [
        ("user:reviewer-b", "attendance.accept", target),
        ("user:reviewer-b", "record.credit", target),
    ]
    # Accepted once; a second time there is nothing left to accept. Re-finalizing keeps it.
    again = await client.post(accept, headers=reviewer_b)
    assert again.status == 409, await again.text()
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/finalize", headers=world.auth("reviewer", "a")
    )
    assert answer.status == 200, await answer.text()
    assert await credited(db) == {"A1": "3.00", "B2": "3.00", "B3": "3.00"}


@pytest.mark.parametrize("number", ["A1", "B2"])
async def test_only_an_uncredited_outside_walk_in_is_accepted(
    client: Client, world: World, db: Db, number: str
) -> None:
    session_id, _ = await joint_session(client, world)
    before = await counts(db)
    answer = await client.post(
        f"/api/v1/sessions/{session_id}/attendance/{number}/accept",
        headers={**world.auth("admin", "all"), **EN},
    )
    assert answer.status == 409, await answer.text()
    assert await counts(db) == before


async def test_an_approved_session_is_reopened_before_anything_is_accepted(
    client: Client, world: World, db: Db
) -> None:
    session_id, _ = await joint_session(client, world)
    root = {**world.auth("admin", "all"), **EN}
    answer = await client.post(f"/api/v1/sessions/{session_id}/approve", headers=root)
    assert answer.status == 200, await answer.text()
    accept = f"/api/v1/sessions/{session_id}/attendance/B3/accept"
    before = await counts(db)
    answer = await client.post(accept, headers=root)
    assert answer.status == 409, await answer.text()
    assert await counts(db) == before
    answer = await client.post(f"/api/v1/sessions/{session_id}/reopen", headers=root)
    assert answer.status == 200, await answer.text()
    answer = await client.post(accept, headers=root)
    assert answer.status == 200, await answer.text()


# --- 14. Existence oracles in 409 answers --------------------------------------------------------


async def test_a_code_taken_in_another_county_is_refused_without_confirming_it(
    client: Client, world: World, db: Db
) -> None:
    await seed(client, world)
    admin = {**world.auth("admin", "a"), **EN}
    before = await counts(db)
    tries = [
        (
            "/api/v1/members",
            {"member_no": "B1", "name": "某人", "org_code": "a1", "category": "ordinary"},
            "This member number cannot be used.",
        ),
        (
            "/api/v1/members",
            {
                "member_no": "A-NEW",
                "name": "某人",
                "org_code": "a1",
                "category": "ordinary",
                "card_code": "card-B1",
            },
            "This card code cannot be used.",
        ),
        ("/api/v1/venues", {"code": "TC", "name": "某会场", "org_code": "a1"}, None),
        (
            "/api/v1/organizations",
            {"code": "b1", "name": "某支部", "level": "branch", "parent_code": "a1"},
            None,
        ),
    ]
    for path, body, message in tries:
        answer = await client.post(path, headers=admin, json=body)
        assert answer.status == 409, await answer.text()
        error = (await answer.json())["error"]
        assert error["message"] == (message or "This code cannot be used."), error
        assert "exist" not in error["message"] and "another" not in error["message"]
    assert await counts(db) == before
    async with read_session(db) as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 4
        assert await session.scalar(select(func.count()).select_from(Venue)) == 2
        assert await session.scalar(select(func.count()).select_from(Organization)) == 6
    # Inside the caller's own subtree the answer still says what is taken.
    answer = await client.post(
        "/api/v1/members",
        headers=admin,
        json={"member_no": "A1", "name": "某人", "org_code": "a1", "category": "ordinary"},
    )
    assert (await answer.json())["error"]["message"] == "A member with number A1 already exists."


async def test_an_account_or_import_row_taken_elsewhere_is_not_confirmed(
    client: Client, world: World, db: Db
) -> None:
    await seed(client, world)
    scope_a = Scope(await org_path(db, "a"))
    for taken in ("operator-b", "root"):  # of county b, and of the whole tree
        with pytest.raises(Conflict) as refused:
            async with write_session(db) as session:
                await users.create_user(
                    session,
                    scope_a,
                    "test",
                    username=taken,
                    display_name="某人",
                    role="operator",
                    org_code="a1",
                    password_hash=None,
                )
        assert refused.value.message == "This username cannot be used."
    with pytest.raises(Conflict) as refused:
        async with write_session(db) as session:
            await users.create_user(
                session,
                scope_a,
                "test",
                username="operator-a",
                display_name="某人",
                role="operator",
                org_code="a1",
                password_hash=None,
            )
    assert refused.value.message == "A user named {username} already exists."
    answer = await client.post(
        "/api/v1/members/import",
        headers={**world.auth("admin", "a"), **EN, "Content-Type": "text/csv"},
        data="member_no,name,org_code,category\nB1,某人,a1,ordinary\n",
    )
    assert answer.status == 422, await answer.text()
    rows = (await answer.json())["error"]["rows"]
    assert rows == [{"line": 2, "message": "Member number B1 cannot be used."}]


async def org_path(db: Db, code: str) -> str:
    async with read_session(db) as session:
        path = await session.scalar(select(Organization.path).where(Organization.code == code))
    assert path is not None
    return path


async def test_the_accepted_walk_ins_table_matches_its_migration(database_url: str) -> None:
    """Revision 0006 creates what the model describes (nothing more, nothing less)."""

    def diffs(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return [
            diff
            for diff in compare_metadata(context, Base.metadata)
            if "accepted_walk_ins" in repr(diff)
        ]

    engine = make_engine(database_url)
    async with engine.connect() as connection:
        found = await connection.run_sync(diffs)
    await engine.dispose()
    assert found == []


# --- the pure rules -------------------------------------------------------------------------


def _judged(outside: frozenset[str], *checkins: tuple[str, str, int]) -> dict[str, Any]:
    """A 3-hour session at M (branch B) with A on the roster; everyone signs in at `t`."""
    start, end = 0, 10_800
    events = [CheckInEvent(m, v, "in", t, i) for i, (m, v, t) in enumerate(checkins)]
    inp = SessionInput(
        start,
        end,
        Decimal(3),
        Policy(require_stream_verification=False),
        "M",
        ("B", "M"),
        {"A": "M"},
        events,
        [],
        frozenset({"R"}),
        outside,
    )
    return {r.member: (r.status, r.credit_hours, r.flags) for r in compute(inp).members}


def test_an_outside_walk_in_is_judged_but_not_credited() -> None:
    three, zero = Decimal(3), Decimal(0)
    found = _judged(
        frozenset({"A", "W", "L", "R"}),
        ("A", "M", 0),
        ("W", "B", 0),
        ("L", "M", 9_000),
        ("R", "M", 0),
        ("K", "M", 0),
    )
    assert found == {
        "A": ("present", three, ()),  # on the roster: never outside
        "W": ("present", zero, ("outside_scope", "walk_in")),
        "L": ("partial", zero, ("late", "outside_scope", "walk_in")),  # flagged whatever it came to
        "R": ("present", zero, ("outside_scope", "walk_in")),  # no `repeat`: not credited anyway
        "K": ("present", three, ("walk_in",)),
    }


def test_the_session_s_organizations() -> None:
    venue_paths = {"FY": "/1/2/", "TC": "/1/5/"}
    walk_ins = {"own": "/1/2/3/", "theirs_at_tc": "/1/5/6/", "theirs_at_fy": "/1/5/7/"}
    venues_of = {"own": {"TC"}, "theirs_at_tc": {"TC", "FY"}, "theirs_at_fy": {"FY"}}
    assert outside_walk_ins(walk_ins, venues_of, "/1/2/", venue_paths) == {"theirs_at_fy"}
    # A city-level organizer holds every county's members.
    assert outside_walk_ins(walk_ins, venues_of, "/1/", venue_paths) == frozenset()


async def test_a_roster_file_on_the_session_form_cannot_add_another_countys_member(
    client: Client, world: World, db: Db
) -> None:
    """The roster file path (issue 14, item 8): 凤阳县's operator edits a session through the page
    form with a file naming B1 of 天长市; nothing changes and B1's name is never shown."""
    session_id, _ = await scheduled_with_a1(client, world)
    await add_user(db, "fy-operator", "operator", "a")
    before = await counts(db)
    async with Browser(client) as browser:
        csrf = await browser.signed_in("fy-operator")
        form = session_form(
            csrf,
            main_venue="FY",
            branch_venues=[],
            org_0="",
            org_venue_0="",
            roster_lines="",
            roster_file=None,
        )
        roster = "党员编号,会场代码\nA1,FY\nB1,FY\n".encode()
        form.add_field(
            "roster_file", io.BytesIO(roster), filename="名单.csv", content_type="text/csv"
        )
        async with browser.request("POST", f"/sessions/{session_id}/edit", data=form) as answer:
            html = await answer.text()
            assert answer.status == 422, html[:2000]
    assert "B1" in html and "天长党员B1" not in html
    assert await counts(db) == before
    assert await rostered(db) == ["A1"]
