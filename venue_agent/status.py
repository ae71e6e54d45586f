"""What the agent reports about itself, from the journal: for `status` and the staff page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from venue_agent.link import LAST_SYNC_KEY
from venue_agent.outbox import Event, Outbox
from venue_agent.schedule import ScheduleBook, Session

# A sample older than this no longer describes the stream (samples come every few seconds).
SAMPLE_FRESH_FOR = timedelta(seconds=30)
STREAM_FIELDS = ("bitrate_kbps", "fps", "loss_pct", "jitter_ms", "freezes", "frames_decoded")


def session_json(session: Session | None) -> dict[str, Any] | None:
    """A session without its roster."""
    if session is None:
        return None
    return {
        "id": session.public_id,
        "title": session.title,
        "topic_code": session.topic_code,
        "starts_at": session.starts_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
        "state": session.state,
        "role": session.role,
        "roster_size": len(session.roster),
    }


def rejected_json(event: Event) -> dict[str, Any]:
    """A refused check-in as the page lists it."""
    payload = event.payload
    return {
        "event_id": event.event_id,
        "session_id": event.session_public_id,
        "code": payload.get("member_no") or payload.get("card_code"),
        "kind": payload.get("kind"),
        "at": payload.get("at"),
        "source": payload.get("source"),
        "reason": event.reason,
    }


def stream_json(event: Event | None, now: datetime) -> dict[str, Any]:
    """The live stream as the newest journaled sample describes it; idle when there is none."""
    if event is not None:
        try:
            at = datetime.fromisoformat(str(event.payload.get("at")))
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None and now - at <= SAMPLE_FRESH_FOR:
            figures = {name: event.payload.get(name) for name in STREAM_FIELDS}
            return {
                "state": event.payload.get("state"),
                "session_id": event.session_public_id,
                "at": event.payload.get("at"),
                **figures,
            }
    return {"state": "idle", "session_id": None}


def snapshot(outbox: Outbox, book: ScheduleBook, now: datetime) -> dict[str, Any]:
    """Queue depth, last sync, the current and next session, rejected count, the live stream,
    and the time zone to show every time in (reads only)."""
    counts = outbox.counts()
    return {
        "timezone": book.timezone,
        "queue_depth": counts.pending,
        "sent_count": counts.sent,
        "rejected_count": counts.rejected,
        "last_sync": outbox.get_meta(LAST_SYNC_KEY),
        "session": session_json(book.current(now)),
        "next_session": session_json(book.upcoming(now)),
        "stream": stream_json(outbox.latest("sample"), now),
    }
