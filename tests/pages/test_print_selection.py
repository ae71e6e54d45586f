"""The sign-in sheet a run and a venue at a time (issue 14, item 7), read as HTML on every
database: who gets which venue's sheet, what is not found, and a committee's registration forms
in one document (the browser and the printed pages: tests/e2e/test_print_layouts.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from server.auth.principal import WHOLE_TREE
from server.db.session import read_session, write_session
from server.domain.members import MemberFields
from server.services import members
from server.services.archive import registration_form
from server.services.registration_forms import registration_forms
from tests.support.class_workflow import (
    CLASS_PAGE,
    START,
    TRAINEES,
    TZ,
    add_run,
    page,
    seed_class,
)
from tests.support.databases import Db
from tests.support.world import World

SHEETS = f"{CLASS_PAGE}/signin-sheet"


def sheets_of(html: str) -> list[tuple[str, list[str]]]:
    """Each sign-in table's venue and the members on it, in order."""
    found = []
    for table in re.split(r'<table class="form signin(?: one-venue)?"', html)[1:]:
        body = table.split("</table>")[0]
        venue = re.search(r'data-venue="([^"]*)"', body.split(">")[0])
        found.append((venue.group(1) if venue else "", re.findall(r'data-member="([^"]+)"', body)))
    return found


async def test_a_run_and_a_venue_print_on_a_sheet_of_their_own(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    auth = world.auth("reviewer", "a")
    every = sheets_of(await page(client, SHEETS, auth))
    assert every == [("WF-MAIN", ["WF-1", "WF-2"]), ("WF-BR", ["WF-3"])]
    branch = await page(client, f"{SHEETS}?run=1&venue=WF-BR", auth)
    assert sheets_of(branch) == [("WF-BR", ["WF-3"])]
    assert "第1期 · 西泉村分会场" in branch and "张学员" not in branch
    # The whole class's sheet keeps every venue of a run together, the main venue's first.
    whole = await page(client, f"{CLASS_PAGE}/print/signin_sheet", auth)
    assert sheets_of(whole) == [("", ["WF-1", "WF-2", "WF-3"])]
    assert 'href="/plans/a1/2026/classes/C01/signin-sheet?run=1&amp;venue=WF-BR"' in whole
    chosen = await page(client, f"{CLASS_PAGE}/print/signin_sheet?run=1&venue=WF-MAIN", auth)
    assert sheets_of(chosen) == [("WF-MAIN", ["WF-1", "WF-2"])]


@pytest.mark.parametrize(
    "query", ["?run=2", "?run=x", "?run=1&venue=NOPE", "?venue=NOPE", "?run=99999"]
)
async def test_a_run_or_venue_the_class_has_not_is_not_found(
    query: str, client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    html = await page(client, f"{SHEETS}{query}", world.auth("operator", "a"), 404)
    assert "张学员" not in html and "王学员" not in html


async def test_venue_staff_get_their_venues_sheets_only(client: Any, db: Db, world: World) -> None:
    await seed_class(db)
    # Subtree a holds both venues (a1 and a1a); subtree b none of them.
    county = await page(client, SHEETS, world.auth("venue_staff", "a"))
    assert sheets_of(county) == [("WF-MAIN", ["WF-1", "WF-2"]), ("WF-BR", ["WF-3"])]
    other = await page(client, SHEETS, world.auth("venue_staff", "b"), 404)
    assert "张学员" not in other and "乡村振兴" not in other
    await page(client, f"{CLASS_PAGE}/print/signin_sheet", world.auth("venue_staff", "a"), 403)


async def test_a_class_without_runs_prints_a_blank_sheet_for_its_subtrees_staff(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db, with_run=False)
    html = await page(client, SHEETS, world.auth("venue_staff", "a"))
    assert html.count('<tr class="blank">') == 10 and "乡村振兴专题培训班" in html
    await page(client, SHEETS, world.auth("venue_staff", "b"), 404)


async def test_a_committees_registration_forms_print_in_one_document(
    client: Any, db: Db, world: World
) -> None:
    await seed_class(db)
    async with write_session(db) as session:
        for number, org in (("UP-1", "a"), ("OUT-1", "b1")):
            fields = MemberFields(number, f"外单位{number}", org, "committee", None)
            await members.create_member(session, WHOLE_TREE, "test", fields)
    html = await page(client, "/organizations/a1/cabinet/forms?year=2026", world.auth("admin", "a"))
    shown = re.findall(r'<article class="a4-sheet registration-form" data-member="([^"]+)"', html)
    assert sorted(shown) == sorted(number for number, _, _ in TRAINEES)
    assert "外单位" not in html
    first = html.split('data-member="WF-1"')[1].split("</article>")[0]
    assert "西泉镇党委" in first and "XC-01" not in first  # the organizer, not the topic code
    assert "普通党员" in first and "ordinary" not in first
    cabinet = await page(client, "/organizations/a1/cabinet?year=2026", world.auth("admin", "a"))
    assert 'href="/organizations/a1/cabinet/forms?year=2026"' in cabinet
    await page(client, "/organizations/a1/cabinet/forms?year=2026", world.auth("admin", "b"), 404)


async def test_the_committees_forms_are_each_members_own_form(db: Db, world: World) -> None:
    """The forms read for a whole committee at once are the forms read one member at a time."""
    await seed_class(db)
    second = START + timedelta(days=7)
    stays = {
        "WF-1": (second, second + timedelta(hours=1)),  # part of the lesson
        "WF-3": (second - timedelta(minutes=3), second + timedelta(hours=3)),
    }
    roster = [("WF-1", "WF-MAIN"), ("WF-2", "WF-MAIN"), ("WF-3", "WF-BR")]
    await add_run(db, "C01", "乡村振兴第二期", second, roster, stays)
    async with read_session(db) as session:
        found, forms = await registration_forms(session, WHOLE_TREE, "a1", 2026, TZ)
        one_by_one = [
            await registration_form(session, WHOLE_TREE, line.member_no, 2026, TZ)
            for line in found.lines
        ]
    assert forms == one_by_one
    # The second run repeats the topic within the year (重复培训): nobody is credited for it.
    credited = {form.line.member_no: [e.title for e in form.entries] for form in forms}
    assert credited == {"WF-1": ["乡村振兴第一期"], "WF-2": [], "WF-3": []}
    first = next(form for form in forms if form.line.member_no == "WF-1")
    assert first.organizers == {first.entries[0].session_id: "西泉镇党委"}
    assert first.venue_names == {"WF-MAIN": "西泉镇党校主会场"}
    assert {form.line.member_no for form in forms} == {number for number, _, _ in TRAINEES}
