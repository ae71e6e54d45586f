"""The demo city's training sessions: each a run of its class, at a main venue with branches,
with a roster drawn from the qualifying members (a topic is credited once a year, so runs of
one class take different members), each member at the session venue nearest in the tree."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Organization, RosterEntry, SessionVenue, TrainingSession
from server.demo import data
from server.domain.attendance import Policy
from server.domain.audit_chain import AuditFacts
from server.domain.sessions import ClassRef
from server.services import audit
from server.services.sessions import new_public_id

CLASS_START = clock_time(9, 0)


class DemoMember(NamedTuple):
    """A stored demo member, as the roster builder needs it."""

    id: int
    member_no: str
    category: str
    org_path: str


async def create_sessions(
    session: AsyncSession,
    rng: random.Random,
    now: datetime,
    org_paths: dict[str, str],
    members: list[DemoMember],
    venue_ids: dict[str, int],
    operator_id: int,
    classes: dict[ClassRef, int],
    specs: Sequence[data.SessionSpec] = data.SESSIONS,
) -> int:
    """The demo training sessions with their venues and rosters, each a run of its class of
    the plan of its year (when there is one); return the roster size."""
    zone = ZoneInfo(data.TIMEZONE)
    today = now.astimezone(zone).date()
    venue_paths = {spec.code: org_paths[spec.org_code] for spec in data.VENUES}
    # Runs of one class take different members: a topic is credited once a year (ATTENDANCE.md).
    taken: dict[str, set[int]] = {}
    rostered = 0
    facts: list[AuditFacts] = []
    for spec in specs:
        day = today + timedelta(days=spec.day_offset)
        starts = datetime.combine(day, CLASS_START, zone).astimezone(UTC)
        ends = starts + timedelta(hours=spec.hours)
        used = taken.setdefault(spec.topic_code, set())
        roots = tuple(org_paths[code] for code in spec.roster_orgs)
        eligible = [
            m
            for m in members
            if m.category in spec.roster_categories
            and m.org_path.startswith(roots)
            and m.id not in used
        ]
        size = len(eligible) if spec.roster_size is None else spec.roster_size
        chosen = sorted(rng.sample(eligible, min(size, len(eligible))))
        used.update(m.id for m in chosen)
        venue_codes = (spec.main_venue, *spec.branch_venues)
        roster = [(m, _nearest(rng, m.org_path, venue_codes, venue_paths)) for m in chosen]
        ref = ClassRef(spec.org_code, day.year, spec.plan_class or "")
        run_of = (ref, classes[ref]) if ref in classes else None
        facts.append(
            await _add_session(
                session, spec, (starts, ends, now), venue_ids, operator_id, roster, run_of
            )
        )
        rostered += len(roster)
    await audit.append(session, facts)
    return rostered


def _nearest(
    rng: random.Random, org_path: str, venue_codes: Sequence[str], venue_paths: dict[str, str]
) -> str:
    """A session venue closest to the member in the tree; the main venue when none is."""
    inside = [code for code in venue_codes if org_path.startswith(venue_paths[code])]
    if not inside:
        return venue_codes[0]
    deepest = max(len(venue_paths[code]) for code in inside)
    return rng.choice([code for code in inside if len(venue_paths[code]) == deepest])


async def _add_session(
    session: AsyncSession,
    spec: data.SessionSpec,
    window: tuple[datetime, datetime, datetime],
    venue_ids: dict[str, int],
    operator_id: int,
    roster: list[tuple[DemoMember, str]],
    run_of: tuple[ClassRef, int] | None,
) -> AuditFacts:
    """Write one session, its venues and its roster straight into the tables: past sessions are
    stored as already held, which the sessions service would not allow."""
    starts, ends, now = window
    org_id = (
        await session.execute(select(Organization.id).where(Organization.code == spec.org_code))
    ).scalar_one()
    past = ends <= now
    training = TrainingSession(
        public_id=new_public_id(),
        title=spec.title,
        topic_code=spec.topic_code,
        starts_at=starts,
        ends_at=ends,
        credit_hours=Decimal(spec.hours),
        state="ended" if past else "scheduled",
        policy=Policy().to_json(),
        org_id=org_id,
        main_venue_id=venue_ids[spec.main_venue],
        plan_class_id=run_of[1] if run_of else None,
        created_by_id=operator_id,
        created_at=now,
        updated_at=now,
        started_at=starts if past else None,
        ended_at=ends if past else None,
    )
    session.add(training)
    await session.flush()
    roles = [(spec.main_venue, "main"), *((code, "branch") for code in spec.branch_venues)]
    await session.execute(
        insert(SessionVenue),
        [{"session_id": training.id, "venue_id": venue_ids[c], "role": r} for c, r in roles],
    )
    await session.execute(
        insert(RosterEntry),
        [
            {"session_id": training.id, "member_id": member.id, "venue_id": venue_ids[code]}
            for member, code in roster
        ],
    )
    snapshot = {
        "title": spec.title,
        "topic_code": spec.topic_code,
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "credit_hours": str(Decimal(spec.hours)),
        "state": training.state,
        "main_venue": spec.main_venue,
        "branch_venues": list(spec.branch_venues),
        "roster": {member.member_no: code for member, code in roster},
        "plan_class": str(run_of[0]) if run_of else None,
    }
    return AuditFacts(
        now, data.ACTOR, "session.create", "session", training.public_id, None, snapshot
    )
