"""The ten-step class workflow's builders: a plan class of a1 with a finalized run, the step-list
form an admin sends, and a page read as someone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server.auth.principal import WHOLE_TREE
from server.db.models import Attendance, CheckIn, Member, StreamSample, TrainingSession, Venue
from server.db.session import read_session, write_session
from server.domain.class_workflow import STEP_KEYS, STEP_LABELS
from server.domain.members import MemberFields
from server.domain.sessions import parse_session
from server.domain.venues import VenueFields
from server.services import members, sessions, venues, workflow
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.plan_rows import add_class

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
CLASS_PAGE = "/plans/a1/2026/classes/C01"
TRAINEES = (("WF-1", "张学员", "a1a"), ("WF-2", "李学员", "a1a"), ("WF-3", "王学员", "a1"))


@dataclass(frozen=True)
class Seeded:
    """A plan class of a1 for 2026 and the public id of its linked session ("" without one)."""

    class_id: int
    session_id: str


async def seed_class(db: Db, *, with_run: bool = True, code: str = "C01") -> Seeded:
    """A 2026 plan of 西泉镇党委 (a1) with class C01; with a run, a session linked to it at a
    main venue (a1) and a branch (a1a), three trainees on its roster, WF-1 checked in for the
    whole lesson, finalized through the real workflow."""
    class_id = await add_class(
        db,
        "a1",
        2026,
        code,
        "西泉镇2026年度党员教育培训计划",
        title="乡村振兴专题培训班",
        runs_planned=2,
        trainees_planned=60,
        hours_per_run=Decimal(3),
        topics=["XC-01", "JC-02"],
        months=[4, 3],
        target_categories=["ordinary", "secretary"],
        target_org_codes=["a1a"],
        first_lesson=True,
    )
    if not with_run:
        return Seeded(class_id, "")
    async with write_session(db) as session:
        for number, name, org in TRAINEES:
            await members.create_member(
                session, WHOLE_TREE, "test", MemberFields(number, name, org, "ordinary", None)
            )
        for venue, name, org in (
            ("WF-MAIN", "西泉镇党校主会场", "a1"),
            ("WF-BR", "西泉村分会场", "a1a"),
        ):
            await venues.create_venue(session, WHOLE_TREE, "test", VenueFields(venue, name, org))
    public_id = await add_run(
        db,
        code,
        "乡村振兴第一期",
        START,
        [("WF-1", "WF-MAIN"), ("WF-2", "WF-MAIN"), ("WF-3", "WF-BR")],
        {"WF-1": (START - timedelta(minutes=5), START + timedelta(hours=3))},
    )
    return Seeded(class_id, public_id)


async def add_run(
    db: Db,
    code: str,
    title: str,
    start: datetime,
    roster: list[tuple[str, str]],
    stays: dict[str, tuple[datetime, datetime]],
    *,
    held: bool = True,
    replay_of: str | None = None,
) -> str:
    """A three-hour run of a1's 2026 class `code` (3 学时) at WF-MAIN with the branch WF-BR,
    the roster's (member, venue) pairs, each stay a scan in and out at the member's venue, and
    (held) started, ended and finalized through the real workflow; its public id. A make-up
    (replay_of) has no origin venue: its roster's venues report the stream good all along."""
    fields, problems = parse_session(
        {
            "title": title,
            "topic_code": "XC-01",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=3)).isoformat(),
            "credit_hours": 3,
            "main_venue": "WF-MAIN",
            "branch_venues": ["WF-BR"],
            "roster": [{"member_no": number, "venue": venue} for number, venue in roster],
            "plan_class": f"a1/2026/{code}",
            "replay_of": replay_of,
        }
    )
    assert fields is not None and not problems, problems
    async with write_session(db) as session:
        view = await sessions.create_session(session, WHOLE_TREE, "test", fields)
        training_id = await session.scalar(
            select(TrainingSession.id).where(TrainingSession.public_id == view.id)
        )
        venue_of = dict(roster)
        for number, (arrived, left) in stays.items():
            venue_id = await session.scalar(select(Venue.id).where(Venue.code == venue_of[number]))
            member_id = await session.scalar(select(Member.id).where(Member.member_no == number))
            for kind, moment in (("in", arrived), ("out", left)):
                session.add(
                    CheckIn(
                        event_id=str(uuid.uuid4()),
                        session_id=training_id,
                        venue_id=venue_id,
                        member_id=member_id,
                        kind=kind,
                        source="scanner",
                        at_raw=moment,
                        at=moment,
                        received_at=moment,
                    )
                )
        if replay_of is not None:
            for venue in {venue for _, venue in roster}:
                venue_id = await session.scalar(select(Venue.id).where(Venue.code == venue))
                assert venue_id is not None
                session.add_all(_received(training_id, venue_id, start, start + timedelta(hours=3)))
    if held:
        async with write_session(db) as session:
            for action in ("start", "end", "finalize"):
                await workflow.act(session, WHOLE_TREE, "test", view.id, action, TZ)
    return view.id


def _received(
    training_id: int | None, venue_id: int, start: datetime, end: datetime
) -> list[StreamSample]:
    """A venue's agent reporting the stream good every 15 s (the reach of one 5 s sample)."""
    assert training_id is not None
    moments = (
        start + timedelta(seconds=s) for s in range(0, int((end - start).total_seconds()), 15)
    )
    return [
        StreamSample(session_id=training_id, venue_id=venue_id, at=at, state="good", received_at=at)
        for at in moments
    ]


def step_list_form(
    names: dict[str, str] | None = None, order: list[str] | None = None
) -> dict[str, str]:
    """A step-list form: names default to the English defaults, positions to the given order."""
    order = order or list(STEP_KEYS)
    form = {f"position_{key}": str(order.index(key) + 1) for key in STEP_KEYS}
    form |= {f"name_{key}": STEP_LABELS[key] for key in STEP_KEYS}
    form |= {f"name_{key}": name for key, name in (names or {}).items()}
    return form


async def page(client: Client, path: str, auth: dict[str, str], status: int = 200) -> str:
    """GET a page as someone (redirects not followed); it answers `status`; its HTML."""
    answer = await client.get(path, headers=auth, allow_redirects=False)
    text: str = await answer.text()
    assert answer.status == status, (answer.status, text[:600])
    return text


async def statuses(db: Db) -> dict[str, str]:
    """Each member's stored attendance status, by member number (one run per member here)."""
    async with read_session(db) as session:
        rows = await session.execute(
            select(Member.member_no, Attendance.status).join(
                Member, Member.id == Attendance.member_id
            )
        )
        return {number: status for number, status in rows.all()}
