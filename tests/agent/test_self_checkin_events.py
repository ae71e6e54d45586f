"""A member's own check-in by phone reaches the staff page through the events socket: the agent
journals the server's `checkin_recorded` as already sent (listed, never uploaded) and ignores a
malformed one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from venue_agent.desk import Desk
from venue_agent.events import EventListener
from venue_agent.link import Link
from venue_agent.outbox import SENT, Outbox
from venue_agent.schedule import ScheduleBook, parse_schedule

NOW = datetime.now(UTC)


def _book() -> ScheduleBook:
    session = {
        "id": "s1",
        "title": "专题培训",
        "topic_code": "T",
        "starts_at": (NOW - timedelta(minutes=5)).isoformat(),
        "ends_at": (NOW + timedelta(hours=2)).isoformat(),
        "state": "live",
        "role": "branch",
        "roster": [{"member_no": "M1", "name": "张三", "card_code": None}],
    }
    return ScheduleBook(parse_schedule({"sessions": [session]}))


async def test_a_recorded_self_checkin_is_listed_and_never_sent(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path)
    try:
        book = _book()
        desk = Desk(outbox, book, Link())
        listener = EventListener(None, asyncio.Event(), None, desk)  # type: ignore[arg-type]
        event = {
            "type": "checkin_recorded",
            "session_id": "s1",
            "event_id": "0b6f3c1e-5d7a-4c58-9f3e-1a2b3c4d5e6f",
            "member_no": "M1",
            "kind": "in",
            "at": NOW.isoformat(),
            "source": "self",
        }
        listener.handle(json.dumps(event))
        listener.handle(json.dumps(event))  # said twice: journaled once
        listener.handle(json.dumps({**event, "event_id": 7, "member_no": "M2"}))
        session = book.get("s1")
        assert session is not None
        present = await desk.attendees(session)
        assert [(a.member_code, a.name) for a in present] == [("M1", "张三")]
        journal = outbox.session_events("checkin", "s1")
        assert [(e.state, e.payload["source"]) for e in journal] == [(SENT, "self")]
        assert outbox.pending("checkin", 10) == []
    finally:
        outbox.close()
