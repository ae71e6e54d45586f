"""Check-in events as agents send them: their shape, and the clock correction of PROTOCOL.md."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.times import parse_instant, whole_seconds
from server.domain.vocabulary import CHECKIN_KINDS, CHECKIN_SOURCES

MAX_BATCH = 500
MAX_COUNTER = 2**31 - 1  # counters are 32-bit columns in PostgreSQL
CLOCK_TOLERANCE = timedelta(seconds=2)
UUID_PATTERN = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


@dataclass(frozen=True)
class Event:
    """One well-formed check-in event."""

    event_id: str
    session_id: str
    member_no: str | None
    card_code: str | None
    kind: str
    at_raw: datetime
    source: str


def clock_offset(sent_at: datetime, received_at: datetime) -> timedelta:
    """How far the agent's clock is behind ours; small differences are network delay (zero)."""
    offset = received_at - sent_at
    return offset if abs(offset) > CLOCK_TOLERANCE else timedelta(0)


def corrected(at_raw: datetime, offset: timedelta) -> datetime | None:
    """The event time on our clock, truncated to the whole second; None past the calendar's
    ends (such an event is outside every session's window)."""
    try:
        return whole_seconds(at_raw + offset)
    except OverflowError:
        return None


def event_id_of(raw: object) -> str | None:
    """The event's UUID in canonical form, if it has one."""
    if not isinstance(raw, Mapping):
        return None
    value = raw.get("event_id")
    if not isinstance(value, str) or not UUID_PATTERN.match(value):
        return None
    return value.lower()


def parse_event(raw: object) -> Event | None:
    """A well-formed event, or None (the caller rejects it as `invalid`)."""
    event_id = event_id_of(raw)
    if event_id is None or not isinstance(raw, Mapping):
        return None
    session_id, kind, source = raw.get("session_id"), raw.get("kind"), raw.get("source")
    member_no, card_code = raw.get("member_no"), raw.get("card_code")
    at = parse_instant(raw.get("at"))
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 32:
        return None
    if kind not in CHECKIN_KINDS or source not in CHECKIN_SOURCES or at is None:
        return None
    if not _optional_code(member_no) or not _optional_code(card_code):
        return None
    if (member_no is None) == (card_code is None):
        return None  # exactly one of the two identifies the member
    return Event(
        event_id, session_id, member_no, card_code, str(kind), whole_seconds(at), str(source)
    )


def _optional_code(value: object) -> bool:
    return value is None or (isinstance(value, str) and 0 < len(value) <= 128)
