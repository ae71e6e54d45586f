"""The monthly report counts make-up (补学) person-times apart (issue 15, item 3): a lesson held
with one member present and two absent, its recording kept, and a make-up session replaying it
where one of the absent comes for the whole lesson: the month's person-times count both present
results, and makeup_person_times the one in the make-up session."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from server.db.models import Recording, TrainingSession
from server.db.session import write_session
from tests.support.class_workflow import START, add_run, seed_class
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.world import World

SPEC = load_spec()
MAKEUP = START + timedelta(days=7)


async def test_makeup_person_times_are_counted_apart(client: Any, db: Db, world: World) -> None:
    seeded = await seed_class(db)  # WF-1 present; WF-2 and WF-3 absent
    async with write_session(db) as session:
        lesson = await session.scalar(
            select(TrainingSession.id).where(TrainingSession.public_id == seeded.session_id)
        )
        assert lesson is not None
        session.add(
            Recording(
                public_id=str(uuid.uuid4()),
                session_id=lesson,
                file_name="lesson.webm",
                started_at=START,
                ended_at=START + timedelta(hours=3),
                duration_ms=10_800_000,
                bytes=1,
                gaps=[],
            )
        )
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
