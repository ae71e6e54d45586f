"""The monthly report counts make-up (补学) person-times apart (issue 15, item 3): a lesson held
with one member present and two absent, its recording kept, and a make-up session replaying it
where one of the absent comes for the whole lesson: the month's person-times count both present
results, and makeup_person_times the one in the make-up session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.class_workflow import START, add_run, seed_class
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.recordings import add_recording
from tests.support.world import World

SPEC = load_spec()
MAKEUP = START + timedelta(days=7)


async def test_makeup_person_times_are_counted_apart(client: Any, db: Db, world: World) -> None:
    seeded = await seed_class(db)  # WF-1 present; WF-2 and WF-3 absent
    await add_recording(db, seeded.session_id, "lesson.webm", START, length=timedelta(hours=3))
    await add_run(
        db,
        "C01",
        "补学：乡村振兴第一期",
        MAKEUP,
        [("WF-2", "WF-MAIN")],
        {"WF-2": (MAKEUP - timedelta(minutes=5), MAKEUP + timedelta(hours=3))},
        replay_of=seeded.session_id,
    )
    report = await check(
        client,
        SPEC,
        "get",
        "/api/v1/reports/monthly?org=a1&month=2026-03",
        200,
        headers=world.auth("reviewer", "a"),
    )
    assert (report["person_times"], report["makeup_person_times"]) == (2, 1)
