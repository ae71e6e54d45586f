"""Ingesting check-ins from agents: idempotent by event_id, clock-corrected, nothing dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import AgentVenue
from server.db.bulk import bulk_insert
from server.db.models import CheckIn, Member, QuarantinedCheckIn, SessionVenue, TrainingSession
from server.domain.checkins import Event, clock_offset, corrected, event_id_of, parse_event
from server.domain.sessions import accepts_checkin_at


@dataclass(frozen=True)
class Outcome:
    """The answer for one event, in the order the events came."""

    event_id: str | None
    status: str  # accepted | duplicate | rejected
    reason: str | None = None

    def as_json(self) -> dict[str, str | None]:
        """As PROTOCOL.md writes it."""
        return {"event_id": self.event_id, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class _Context:
    sessions: dict[str, TrainingSession]
    joined: set[int]  # ids of sessions this venue takes part in
    by_number: dict[str, int]
    by_card: dict[str, int]


async def _context(session: AsyncSession, venue: AgentVenue, events: Sequence[Event]) -> _Context:
    public_ids = {event.session_id for event in events}
    sessions = {
        row.public_id: row
        for row in (
            await session.execute(
                select(TrainingSession).where(TrainingSession.public_id.in_(public_ids))
            )
        ).scalars()
    }
    joined = set(
        (
            await session.execute(
                select(SessionVenue.session_id).where(
                    SessionVenue.venue_id == venue.venue_id,
                    SessionVenue.session_id.in_([row.id for row in sessions.values()]),
                )
            )
        ).scalars()
    )
    cards = {event.card_code for event in events if event.card_code}
    # A scanner cannot tell a card from a member number: a "card" may be a number too.
    numbers = {event.member_no for event in events if event.member_no} | cards
    by_number: dict[str, int] = {}
    if numbers:
        found = await session.execute(
            select(Member.member_no, Member.id).where(Member.member_no.in_(numbers))
        )
        by_number = {number: member_id for number, member_id in found}
    by_card: dict[str, int] = {}
    if cards:
        rows = await session.execute(
            select(Member.card_code, Member.id).where(Member.card_code.in_(cards))
        )
        by_card = {card: member_id for card, member_id in rows if card}
    return _Context(sessions, joined, by_number, by_card)


def _row(
    event: Event, venue: AgentVenue, context: _Context, offset: Any, received_at: datetime
) -> dict[str, Any] | str:
    """The check-in row for an event, or the reason it is rejected."""
    training = context.sessions.get(event.session_id)
    if training is None:
        return "unknown_session"
    if training.id not in context.joined:
        return "venue_not_in_session"
    if event.member_no:
        member_id = context.by_number.get(event.member_no)
    else:
        card = event.card_code or ""
        member_id = context.by_card.get(card) or context.by_number.get(card)
    if member_id is None:
        return "unknown_member"
    at = corrected(event.at_raw, offset)
    if at is None or not accepts_checkin_at(training.starts_at, training.ends_at, at):
        return "outside_window"
    return {
        "event_id": event.event_id,
        "session_id": training.id,
        "venue_id": venue.venue_id,
        "member_id": member_id,
        "kind": event.kind,
        "source": event.source,
        "at_raw": event.at_raw,
        "at": at,
        "received_at": received_at,
        "after_approval": training.state == "approved",
    }


SAME_CONTENT = ("session_id", "venue_id", "member_id", "kind", "source", "at_raw")


async def ingest(
    session: AsyncSession,
    venue: AgentVenue,
    sent_at: datetime,
    received_at: datetime,
    raw_events: Sequence[object],
) -> list[Outcome]:
    """Store every new, valid event once; quarantine rejected ones; answer per event in order."""
    offset = clock_offset(sent_at, received_at)
    parsed = [parse_event(raw) for raw in raw_events]
    context = await _context(session, venue, [event for event in parsed if event])
    outcomes: list[Outcome | None] = [None] * len(parsed)
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    quarantine: list[dict[str, Any]] = []
    for index, (raw, event) in enumerate(zip(raw_events, parsed, strict=True)):
        if event is None:
            outcomes[index] = Outcome(event_id_of(raw), "rejected", "invalid")
            quarantine.append(_quarantined(venue, raw, "invalid", received_at))
            continue
        row = _row(event, venue, context, offset, received_at)
        if isinstance(row, str):
            outcomes[index] = Outcome(event.event_id, "rejected", row)
            quarantine.append(_quarantined(venue, raw, row, received_at))
        elif event.event_id in rows:  # the same event twice in one batch
            first = rows[event.event_id][1]
            same = all(first[key] == row[key] for key in SAME_CONTENT)
            outcomes[index] = (
                Outcome(event.event_id, "duplicate")
                if same
                else Outcome(event.event_id, "rejected", "event_id_reused")
            )
            if not same:
                quarantine.append(_quarantined(venue, raw, "event_id_reused", received_at))
        else:
            rows[event.event_id] = (index, row)
    inserted = await _insert_new(session, [row for _, row in rows.values()])
    existing = await _existing(session, [eid for eid in rows if eid not in inserted])
    for event_id, (index, row) in rows.items():
        if event_id in inserted:
            outcomes[index] = Outcome(event_id, "accepted")
            continue
        stored = existing[event_id]
        if all(stored[key] == row[key] for key in SAME_CONTENT):
            outcomes[index] = Outcome(event_id, "duplicate")
        else:
            outcomes[index] = Outcome(event_id, "rejected", "event_id_reused")
            quarantine.append(
                _quarantined(venue, raw_events[index], "event_id_reused", received_at)
            )
    await _quarantine(session, quarantine)
    return [outcome for outcome in outcomes if outcome is not None]


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert-or-ignore by event_id; return the ids this call inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(CheckIn)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(CheckIn.event_id)
    )
    result = await session.execute(statement, rows)
    return set(result.scalars().all())


async def _existing(session: AsyncSession, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not event_ids:
        return {}
    rows = await session.execute(select(CheckIn).where(CheckIn.event_id.in_(event_ids)))
    return {
        row.event_id: {key: getattr(row, key) for key in SAME_CONTENT} for row in rows.scalars()
    }


def _quarantined(
    venue: AgentVenue, raw: object, reason: str, received_at: datetime
) -> dict[str, Any]:
    payload = dict(raw) if isinstance(raw, dict) else {"value": repr(raw)[:2000]}
    session_ref = payload.get("session_id")
    return {
        "event_id": event_id_of(raw)
        or (str(payload.get("event_id"))[:64] if payload.get("event_id") is not None else None),
        "venue_id": venue.venue_id,
        "session_ref": session_ref[:64] if isinstance(session_ref, str) else None,
        "reason": reason,
        "payload": payload,
        "received_at": received_at,
    }


async def _quarantine(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Keep rejected events for reviewers, once per (event, reason) even when resent."""
    if not rows:
        return
    known = {
        (event_id, reason)
        for event_id, reason in (
            await session.execute(
                select(QuarantinedCheckIn.event_id, QuarantinedCheckIn.reason).where(
                    QuarantinedCheckIn.event_id.in_(
                        [row["event_id"] for row in rows if row["event_id"]]
                    )
                )
            )
        ).all()
    }
    fresh = [
        row
        for row in rows
        if row["event_id"] is None or (row["event_id"], row["reason"]) not in known
    ]
    await bulk_insert(session, QuarantinedCheckIn, fresh)
