"""Ingesting check-ins from agents: idempotent by event_id, clock-corrected, nothing dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import AgentVenue
from server.db.bulk import bulk_insert
from server.db.models import CheckIn, Member, QuarantinedCheckIn, SessionVenue, TrainingSession
from server.domain.agent_payloads import CheckinBatch, CheckinEvent, SentCheckin
from server.domain.sessions import accepts_checkin_at

# The columns that make two sends of one event_id the same event. The table keeps its column
# names: `at_raw` holds the event's `at` as sent, `at` its `at_corrected`.
SAME_CONTENT = ("session_id", "venue_id", "member_id", "kind", "source", "at_raw")


@dataclass(frozen=True)
class CheckinResult:
    """The server's verdict on one event, in the order the events came."""

    event_id: str | None
    status: str  # accepted | duplicate | rejected
    reason: str | None = None

    def as_json(self) -> dict[str, str | None]:
        """As PROTOCOL.md writes it."""
        return {"event_id": self.event_id, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Ingested:
    """What a batch came to: a result per event, in order, and the sessions it changed."""

    results: tuple[CheckinResult, ...]
    sessions_touched: frozenset[str]  # public ids of the sessions that gained check-ins


@dataclass(frozen=True)
class _Lookups:
    """What the batch's events refer to, read once for the whole batch."""

    sessions: dict[str, TrainingSession]  # by public id
    joined: set[int]  # session_id (database key) of the sessions this venue takes part in
    member_id_by_no: dict[str, int]
    member_id_by_card: dict[str, int]


async def _lookups(
    session: AsyncSession, venue: AgentVenue, events: Sequence[CheckinEvent]
) -> _Lookups:
    public_ids = {event.session_public_id for event in events}
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
    card_codes = {event.card_code for event in events if event.card_code}
    # A scanner cannot tell a card from a member number: a card_code may be a member_no too.
    member_nos = {event.member_no for event in events if event.member_no} | card_codes
    member_id_by_no: dict[str, int] = {}
    if member_nos:
        found = await session.execute(
            select(Member.member_no, Member.id).where(Member.member_no.in_(member_nos))
        )
        member_id_by_no = {member_no: member_id for member_no, member_id in found}
    member_id_by_card: dict[str, int] = {}
    if card_codes:
        carded = await session.execute(
            select(Member.card_code, Member.id).where(Member.card_code.in_(card_codes))
        )
        member_id_by_card = {card_code: member_id for card_code, member_id in carded if card_code}
    return _Lookups(sessions, joined, member_id_by_no, member_id_by_card)


def _member_id(event: CheckinEvent, lookups: _Lookups) -> int | None:
    if event.member_no:
        return lookups.member_id_by_no.get(event.member_no)
    card_code = event.member_code
    return lookups.member_id_by_card.get(card_code) or lookups.member_id_by_no.get(card_code)


def _row(
    event: CheckinEvent, venue: AgentVenue, lookups: _Lookups, batch: CheckinBatch
) -> dict[str, Any] | str:
    """The check-in row for an event, or the reason it is rejected."""
    training = lookups.sessions.get(event.session_public_id)
    if training is None:
        return "unknown_session"
    if training.id not in lookups.joined:
        return "venue_not_in_session"
    member_id = _member_id(event, lookups)
    if member_id is None:
        return "unknown_member"
    at_corrected = event.at_corrected
    if at_corrected is None or not accepts_checkin_at(
        training.starts_at, training.ends_at, at_corrected
    ):
        return "outside_window"
    return {
        "event_id": event.event_id,
        "session_id": training.id,
        "venue_id": venue.venue_id,
        "member_id": member_id,
        "kind": event.kind,
        "source": event.source,
        "at_raw": event.at,
        "at": at_corrected,
        "received_at": batch.received_at,
        "after_approval": training.state == "approved",
    }


@dataclass(frozen=True)
class _Accepted:
    """An event that passed every check, waiting to be stored: its place and its row."""

    index: int
    item: SentCheckin
    public_id: str  # its session's
    row: dict[str, Any]


async def ingest(session: AsyncSession, venue: AgentVenue, batch: CheckinBatch) -> Ingested:
    """Store every new, valid event once; quarantine rejected ones; answer per event in order."""
    lookups = await _lookups(session, venue, [i.event for i in batch.items if i.event])
    results: list[CheckinResult | None] = [None] * len(batch.items)
    waiting: dict[str, _Accepted] = {}
    quarantine: list[dict[str, Any]] = []

    def reject(index: int, item: SentCheckin, reason: str) -> None:
        results[index] = CheckinResult(item.event_id, "rejected", reason)
        quarantine.append(_quarantined(venue, item, reason, batch))

    for index, item in enumerate(batch.items):
        event = item.event
        if event is None:
            reject(index, item, "invalid")
            continue
        row = _row(event, venue, lookups, batch)
        if isinstance(row, str):
            reject(index, item, row)
        elif event.event_id in waiting:  # the same event twice in one batch
            if _same(waiting[event.event_id].row, row):
                results[index] = CheckinResult(event.event_id, "duplicate")
            else:
                reject(index, item, "event_id_reused")
        else:
            waiting[event.event_id] = _Accepted(index, item, event.session_public_id, row)
    inserted = await _insert_new(session, [accepted.row for accepted in waiting.values()])
    stored = await _stored(session, [eid for eid in waiting if eid not in inserted])
    for event_id, accepted in waiting.items():
        if event_id in inserted:
            results[accepted.index] = CheckinResult(event_id, "accepted")
        elif _same(stored[event_id], accepted.row):
            results[accepted.index] = CheckinResult(event_id, "duplicate")
        else:
            reject(accepted.index, accepted.item, "event_id_reused")
    await _quarantine(session, quarantine)
    touched = frozenset(a.public_id for eid, a in waiting.items() if eid in inserted)
    return Ingested(tuple(result for result in results if result is not None), touched)


def _same(first: dict[str, Any], second: dict[str, Any]) -> bool:
    return all(first[key] == second[key] for key in SAME_CONTENT)


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


async def _stored(session: AsyncSession, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored content of events already there (sent before, or by a concurrent batch)."""
    if not event_ids:
        return {}
    rows = await session.execute(select(CheckIn).where(CheckIn.event_id.in_(event_ids)))
    return {
        row.event_id: {key: getattr(row, key) for key in SAME_CONTENT} for row in rows.scalars()
    }


def _quarantined(
    venue: AgentVenue, item: SentCheckin, reason: str, batch: CheckinBatch
) -> dict[str, Any]:
    raw = item.payload
    payload = dict(raw) if isinstance(raw, dict) else {"value": repr(raw)[:2000]}
    session_ref = payload.get("session_id")
    sent_event_id = payload.get("event_id")
    return {
        # A malformed event_id is kept as sent (shortened) so reviewers can find the event.
        "event_id": item.event_id
        or (str(sent_event_id)[:64] if sent_event_id is not None else None),
        "venue_id": venue.venue_id,
        "session_ref": session_ref[:64] if isinstance(session_ref, str) else None,
        "reason": reason,
        "payload": payload,
        "received_at": batch.received_at,
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
