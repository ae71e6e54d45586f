"""Finalizing a session: compute attendance (domain/attendance.py) and write it, with the
training records it credits, in one transaction; only rows that change are written and audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from typing import cast as type_cast
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.bulk import bulk_insert, fetch_tuples
from server.db.epochs import epoch_of
from server.db.models import (
    AcceptedWalkIn,
    Attendance,
    CheckIn,
    Member,
    Organization,
    RosterEntry,
    SessionVenue,
    StreamSample,
    TrainingRecord,
    TrainingSession,
    Venue,
)
from server.domain.attendance import (
    CheckInEvent,
    MemberResult,
    Policy,
    Sample,
    SessionInput,
    compute,
    outside_walk_ins,
)
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.times import epoch
from server.services import audit
from server.services.broadcasts import on_air_spans

DELETE_CHUNK = 5000
LOOKUP_CHUNK = 5000


@dataclass(frozen=True)
class FinalizeReport:
    """What a finalization changed."""

    results: int
    attendance_written: int
    attendance_removed: int
    records_written: int
    records_removed: int

    @property
    def changed(self) -> bool:
        """False when re-finalizing found nothing new."""
        return any(
            (
                self.attendance_written,
                self.attendance_removed,
                self.records_written,
                self.records_removed,
            )
        )


async def _input(
    session: AsyncSession, training: TrainingSession, tz: ZoneInfo
) -> tuple[SessionInput, dict[str, int], dict[str, int]]:
    dialect = session.get_bind().dialect.name
    venue_rows = (
        await session.execute(
            select(Venue.id, Venue.code, SessionVenue.role)
            .join(SessionVenue, SessionVenue.venue_id == Venue.id)
            .where(SessionVenue.session_id == training.id)
        )
    ).all()
    venue_code = {venue_id: code for venue_id, code, _ in venue_rows}
    main = next(code for _, code, role in venue_rows if role == "main")
    roster_rows = await fetch_tuples(
        session,
        select(Member.id, Member.member_no, RosterEntry.venue_id)
        .join(RosterEntry, RosterEntry.member_id == Member.id)
        .where(RosterEntry.session_id == training.id),
    )
    member_id_by_no = {member_no: member_id for member_id, member_no, _ in roster_rows}
    roster = {member_no: venue_code[venue_id] for _, member_no, venue_id in roster_rows}
    checkin_rows = await fetch_tuples(
        session,
        select(
            CheckIn.id,
            Member.id,
            Member.member_no,
            CheckIn.venue_id,
            CheckIn.kind,
            epoch_of(CheckIn.at, dialect),
        )
        .join(Member, Member.id == CheckIn.member_id)
        .where(CheckIn.session_id == training.id, CheckIn.after_approval.is_(False)),
    )
    events = []
    for seq, member_id, member_no, venue_id, kind, t in checkin_rows:
        member_id_by_no[member_no] = member_id
        if venue_id in venue_code:
            events.append(CheckInEvent(member_no, venue_code[venue_id], kind, t, seq))
    sample_rows = await fetch_tuples(
        session,
        select(StreamSample.venue_id, epoch_of(StreamSample.at, dialect), StreamSample.state).where(
            StreamSample.session_id == training.id
        ),
    )
    samples = [
        Sample(venue_code[venue_id], t, state)
        for venue_id, t, state in sample_rows
        if venue_id in venue_code
    ]
    year = training.starts_at.astimezone(tz).year
    credited = set(
        (
            await session.execute(
                select(Member.member_no)
                .join(TrainingRecord, TrainingRecord.member_id == Member.id)
                .where(
                    TrainingRecord.topic_code == training.topic_code,
                    TrainingRecord.year == year,
                    TrainingRecord.session_id != training.id,
                    TrainingRecord.member_id.in_(list(member_id_by_no.values())),
                )
            )
        ).scalars()
    )
    policy, _ = Policy.from_json(training.policy)
    inp = SessionInput(
        epoch(training.starts_at),
        epoch(training.ends_at),
        training.credit_hours,
        policy or Policy(),
        main,
        tuple(sorted(venue_code.values())),
        roster,
        events,
        samples,
        frozenset(credited),
        await _outside_scope(session, training, roster, events, member_id_by_no),
        ended_at=None if training.ended_at is None else epoch(training.ended_at),
        on_air=await on_air_spans(session, training.id),
        replay=training.replay_of_id is not None,
    )
    venue_ids = {code: venue_id for venue_id, code in venue_code.items()}
    return inp, member_id_by_no, venue_ids


async def _outside_scope(
    session: AsyncSession,
    training: TrainingSession,
    roster: Mapping[str, str],
    events: Sequence[CheckInEvent],
    member_id_by_no: Mapping[str, int],
) -> frozenset[str]:
    """The walk-ins from outside the session's organizations (`outside_walk_ins`) whose credit
    nobody entitled has accepted."""
    venues_of: dict[str, set[str]] = {}
    for event in events:
        if event.member not in roster:
            venues_of.setdefault(event.member, set()).add(event.venue)
    if not venues_of:
        return frozenset()
    organizer_path = (
        await session.execute(select(Organization.path).where(Organization.id == training.org_id))
    ).scalar_one()
    venue_paths = dict(
        (
            await session.execute(
                select(Venue.code, Organization.path)
                .join(Organization, Organization.id == Venue.org_id)
                .join(SessionVenue, SessionVenue.venue_id == Venue.id)
                .where(SessionVenue.session_id == training.id)
            )
        ).all()
    )
    ids = [member_id_by_no[member] for member in venues_of]
    paths: dict[str, str] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = await session.execute(
            select(Member.member_no, Organization.path)
            .join(Organization, Organization.id == Member.org_id)
            .where(Member.id.in_(ids[start : start + LOOKUP_CHUNK]))
        )
        paths.update(rows.all())
    accepted = set(
        (
            await session.execute(
                select(Member.member_no)
                .join(AcceptedWalkIn, AcceptedWalkIn.member_id == Member.id)
                .where(AcceptedWalkIn.session_id == training.id)
            )
        ).scalars()
    )
    return outside_walk_ins(paths, venues_of, organizer_path, venue_paths) - accepted


def _attendance_row(result: MemberResult, venue_ids: dict[str, int]) -> dict[str, Any]:
    return {
        "assigned_venue_id": venue_ids.get(result.assigned_venue or ""),
        "venues": list(result.venues),
        "status": result.status,
        "reason": result.reason,
        "presence_seconds": result.presence_seconds,
        "verified_seconds": result.verified_seconds,
        "credit_hours": result.credit_hours,
        "flags": list(result.flags),
    }


def _record_venue(result: MemberResult) -> str | None:
    if result.assigned_venue in result.venues:
        return result.assigned_venue
    return result.venues[0] if result.venues else None


async def finalize_session(
    session: AsyncSession, training: TrainingSession, actor: str, tz: ZoneInfo, now: datetime
) -> FinalizeReport:
    """Compute and store the session's attendance and credits (the caller handles state)."""
    inp, member_id_by_no, venue_ids = await _input(session, training, tz)
    result = compute(inp)
    member_no_by_id = {member_id: member_no for member_no, member_id in member_id_by_no.items()}
    wanted = {member_id_by_no[r.member]: _attendance_row(r, venue_ids) for r in result.members}
    facts: list[AuditFacts] = []
    written, removed = await _sync(
        session, ATTENDANCE, training, wanted, member_no_by_id, actor, now, facts
    )
    year = training.starts_at.astimezone(tz).year
    records = {
        member_id_by_no[r.member]: {
            "venue_id": venue_ids.get(_record_venue(r) or ""),
            "topic_code": training.topic_code,
            "year": year,
            "starts_at": training.starts_at,
            "credit_hours": r.credit_hours,
        }
        for r in result.members
        if r.credit_hours > 0
    }
    rec_written, rec_removed = await _sync(
        session, RECORDS, training, records, member_no_by_id, actor, now, facts
    )
    for venue in result.venues:
        await session.execute(
            update(SessionVenue)
            .where(
                SessionVenue.session_id == training.id,
                SessionVenue.venue_id == venue_ids[venue.venue],
            )
            .values(
                expected=venue.expected, checked_in=venue.checked_in, up_seconds=venue.up_seconds
            )
        )
    await audit.append(session, facts)
    return FinalizeReport(len(result.members), written, removed, rec_written, rec_removed)


def _plain(value: Any) -> Any:
    """A JSON-ready value that compares equal however it was made (3 and 3.00 hours alike)."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in row.items()}


@dataclass(frozen=True)
class _Kind:
    """One of the two tables finalization writes, and how its changes are audited."""

    model: type[Attendance] | type[TrainingRecord]
    columns: tuple[str, ...]
    object_type: str
    write_action: str
    remove_action: str
    stamp: str  # the column that says when the row was (re)computed


ATTENDANCE = _Kind(
    Attendance,
    (
        "assigned_venue_id",
        "venues",
        "status",
        "reason",
        "presence_seconds",
        "verified_seconds",
        "credit_hours",
        "flags",
    ),
    "attendance",
    "attendance.write",
    "attendance.remove",
    "computed_at",
)
RECORDS = _Kind(
    TrainingRecord,
    ("venue_id", "topic_code", "year", "starts_at", "credit_hours"),
    "training_record",
    "record.credit",
    "record.remove",
    "created_at",
)


async def _sync(
    session: AsyncSession,
    kind: _Kind,
    training: TrainingSession,
    wanted: dict[int, dict[str, Any]],
    member_no_by_id: dict[int, str],
    actor: str,
    now: datetime,
    facts: list[AuditFacts],
) -> tuple[int, int]:
    """Make the session's rows equal `wanted` (member id → values), touching only changes."""
    model = kind.model
    rows = type_cast(
        "Sequence[Attendance | TrainingRecord]",
        (await session.execute(select(model).where(model.session_id == training.id)))
        .scalars()
        .all(),
    )
    existing = {row.member_id: row for row in rows}

    def target(member_id: int) -> str:
        return f"{training.public_id}/{member_no_by_id.get(member_id, member_id)}"

    inserts, updates = [], []
    for member_id, row in wanted.items():
        old = existing.get(member_id)
        if old is None:
            inserts.append(
                {"session_id": training.id, "member_id": member_id, kind.stamp: now, **row}
            )
            facts.append(
                AuditFacts(
                    now,
                    actor,
                    kind.write_action,
                    kind.object_type,
                    target(member_id),
                    None,
                    _comparable(row),
                )
            )
            continue
        was, becomes = changed_fields(
            _comparable({name: getattr(old, name) for name in kind.columns}), _comparable(row)
        )
        if was or becomes:
            updates.append({"id": old.id, kind.stamp: now, **row})
            facts.append(
                AuditFacts(
                    now, actor, kind.write_action, kind.object_type, target(member_id), was, becomes
                )
            )
    gone = [old for member_id, old in existing.items() if member_id not in wanted]
    facts.extend(
        AuditFacts(
            now,
            actor,
            kind.remove_action,
            kind.object_type,
            target(old.member_id),
            _comparable({name: getattr(old, name) for name in kind.columns}),
            None,
        )
        for old in gone
    )
    ids = [old.id for old in gone]
    for start in range(0, len(ids), DELETE_CHUNK):
        await session.execute(delete(model).where(model.id.in_(ids[start : start + DELETE_CHUNK])))
    if updates:
        await session.execute(update(model), updates)
    await bulk_insert(session, model, inserts)
    return len(inserts) + len(updates), len(gone)
