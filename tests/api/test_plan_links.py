"""A session is a run of a plan class (班次): linked by ORGANIZATION/YEAR/CLASS inside the caller's
subtree, shown on the session, audited, and changed or removed by an edit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from server.auth.principal import WHOLE_TREE, Scope
from server.db.models import AuditEntry, Organization, Plan, PlanClass, TrainingSession
from server.db.session import read_session
from server.services.plan_links import NOT_ABOVE, sees_plan_of
from tests.support.api_site import Site, counts, make_site, session_body
from tests.support.browser import Browser, give_password
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.plan_rows import add_class
from tests.support.world import World


async def add_link_class(db: Db, org_code: str, code: str) -> None:
    """A filed 2026 plan of the organization with a class of that code."""
    await add_class(db, org_code, 2026, code, "年度培训计划", title=f"班次{code}")


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    return await make_site(client, db, world)


async def ok(site: Site, method: str, path: str, **kwargs: Any) -> Any:
    status, body = await site.call(method, path, site.admin, **kwargs)
    assert status in (200, 201), body
    return body


async def stored_class(db: Db, public_id: str) -> str | None:
    async with read_session(db) as session:
        row = (
            await session.execute(
                select(Organization.code, Plan.year, PlanClass.code)
                .join(Plan, Plan.org_id == Organization.id)
                .join(PlanClass, PlanClass.plan_id == Plan.id)
                .join(TrainingSession, TrainingSession.plan_class_id == PlanClass.id)
                .where(TrainingSession.public_id == public_id)
            )
        ).first()
    return f"{row[0]}/{row[1]}/{row[2]}" if row else None


async def test_a_session_links_to_a_class_and_an_edit_moves_or_removes_it(
    site: Site, db: Db
) -> None:
    await add_link_class(db, "a1", "C01")
    await add_link_class(db, "a", "C02")
    created = await ok(
        site, "POST", "/api/v1/sessions", json=session_body(plan_class="a1/2026/C01")
    )
    assert created["plan_class"] == "a1/2026/C01"
    assert await stored_class(db, created["id"]) == "a1/2026/C01"
    path = f"/api/v1/sessions/{created['id']}"
    assert (await ok(site, "GET", path))["plan_class"] == "a1/2026/C01"

    moved = await ok(site, "PUT", path, json=session_body(plan_class="a/2026/C02"))
    assert moved["plan_class"] == "a/2026/C02"
    cleared = await ok(site, "PUT", path, json=session_body())
    assert cleared["plan_class"] is None and await stored_class(db, created["id"]) is None

    async with read_session(db) as session:
        updates = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_id == created["id"], AuditEntry.action == "session.update")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(json.loads(e.before or "{}"), json.loads(e.after or "{}")) for e in updates] == [
        ({"plan_class": "a1/2026/C01"}, {"plan_class": "a/2026/C02"}),
        ({"plan_class": "a/2026/C02"}, {"plan_class": None}),
    ]


async def test_a_class_of_another_subtree_is_as_unknown_as_none(site: Site, db: Db) -> None:
    await add_link_class(db, "b1", "C01")
    before = await counts(db)
    other = await site.refused(
        "POST",
        "/api/v1/sessions",
        422,
        fields={"plan_class": "is not a known plan class"},
        json=session_body(plan_class="b1/2026/C01"),
    )
    unknown = await site.refused(
        "POST",
        "/api/v1/sessions",
        422,
        fields={"plan_class": "is not a known plan class"},
        json=session_body(plan_class="b9/2026/C01"),
    )
    assert other["message"].replace("b1", "?") == unknown["message"].replace("b9", "?")
    assert await counts(db) == before


async def test_the_session_form_offers_the_classes_and_keeps_the_chosen_one(
    client: Client,
    site: Site,
    db: Db,
) -> None:
    await add_link_class(db, "a1", "C01")
    await add_link_class(db, "b1", "C09")
    created = await ok(
        site, "POST", "/api/v1/sessions", json=session_body(plan_class="a1/2026/C01")
    )
    await give_password(db, "operator-a")
    async with Browser(client) as browser:
        await browser.signed_in("operator-a")
        async with browser.request("GET", "/sessions/new") as answer:
            blank = await answer.text()
        async with browser.request("GET", f"/sessions/{created['id']}/edit") as answer:
            editing = await answer.text()
    assert 'value="a1/2026/C01"' in blank and "班次C01" in blank
    assert "C09" not in blank  # another subtree's class is not offered
    assert 'value="a1/2026/C01" selected' in editing


async def test_a_session_is_a_run_only_of_its_own_or_a_higher_plan(site: Site, db: Db) -> None:
    """Runs of a class lie inside the plan's subtree: a county-level session (main venue OTHER
    of county a) is no run of its committee a1's class, though both are the caller's."""
    await add_link_class(db, "a1", "C01")
    body = session_body(
        main_venue="OTHER",
        roster=[{"member_no": "P1", "venue": "OTHER"}, {"member_no": "P2", "venue": "BRANCH"}],
    )
    await site.refused(
        "POST",
        "/api/v1/sessions",
        422,
        fields={"plan_class": NOT_ABOVE},
        json={**body, "plan_class": "a1/2026/C01"},
    )
    await add_link_class(db, "a", "C02")
    assert (await ok(site, "POST", "/api/v1/sessions", json={**body, "plan_class": "a/2026/C02"}))[
        "plan_class"
    ] == "a/2026/C02"


def test_a_scope_sees_the_plans_inside_it_and_above_it_never_beside_it() -> None:
    county_a, committee_a1 = Scope("/1/2/"), Scope("/1/2/3/")
    assert sees_plan_of(committee_a1, "/1/2/3/")  # its own
    assert sees_plan_of(committee_a1, "/1/2/") and sees_plan_of(committee_a1, "/1/")  # above
    assert sees_plan_of(county_a, "/1/2/3/")  # below
    assert not sees_plan_of(committee_a1, "/1/2/4/") and not sees_plan_of(county_a, "/1/5/")
    assert sees_plan_of(WHOLE_TREE, "/1/5/")


async def test_a_joint_sessions_other_subtree_does_not_see_the_organizers_class(
    site: Site, db: Db, world: World
) -> None:
    await add_link_class(db, "a1", "C01")
    joint = session_body(branch_venues=["BRANCH", "VEN-B"], plan_class="a1/2026/C01")
    created = await ok(site, "POST", "/api/v1/sessions", json=joint)
    path = f"/api/v1/sessions/{created['id']}"
    status, seen_by_b = await site.call("GET", path, world.auth("admin", "b"))
    assert status == 200 and seen_by_b["plan_class"] is None
    assert (await ok(site, "GET", path))["plan_class"] == "a1/2026/C01"
