"""The check-in desk: a scan or a click becomes a journaled event, and a line staff can read."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from dataclasses import dataclass

from venue_agent import clock
from venue_agent.link import Link
from venue_agent.outbox import REJECTED, Event, NewEvent, Outbox
from venue_agent.schedule import RosterMember, ScheduleBook, Session

log = logging.getLogger(__name__)

KINDS = ("in", "out")
SOURCES = ("scanner", "manual", "import", "qr")
MAX_CODE_LENGTH = 128
NO_SESSION = "no_session"  # a local reason: there was no session to send the scan to
KIND_WORDS = {"in": "签到", "out": "签退"}


@dataclass(frozen=True)
class Outcome:
    """What became of one scan or click."""

    queued: bool  # journaled to be sent
    known: bool  # on the session's roster
    message: str  # for staff, in Chinese
    event_id: str | None = None
    session: Session | None = None
    member: RosterMember | None = None

    @property
    def alarm(self) -> bool:
        """True when staff should look up: unknown code, nothing to check in to."""
        return not (self.queued and self.known)


@dataclass(frozen=True)
class Attendee:
    """Someone checked in (and not out) at this venue for a session."""

    code: str
    name: str | None
    since: str


def clean_code(raw: str) -> str:
    """The scanned text without surrounding blanks or control characters."""
    return "".join(ch for ch in raw if ch.isprintable()).strip()


class Desk:
    """Turns codes into check-in events: journaled first, then reported."""

    def __init__(self, outbox: Outbox, book: ScheduleBook, link: Link) -> None:
        self.outbox, self.book, self.link = outbox, book, link
        self.scan_kind = "in"  # what a scanner line means; staff switch it on the page

    async def check(
        self,
        raw_code: str,
        *,
        kind: str,
        source: str,
        session_id: str | None = None,
        field: str = "card_code",
    ) -> Outcome:
        """Journal one check-in; `field` names the code when it is on no roster."""
        if kind not in KINDS or source not in SOURCES or field not in ("member_no", "card_code"):
            raise ValueError(f"bad check-in: kind={kind!r} source={source!r} field={field!r}")
        code = clean_code(raw_code)
        if not code or len(code) > MAX_CODE_LENGTH:
            return Outcome(False, False, f"无法识别的扫码内容（{len(code)} 个字符）")
        now = clock.now()
        if session_id is None:
            session, match = self.book.session_for(code, now)
        else:
            session = self.book.get(session_id)
            if session is None or not session.takes_checkins_at(now):
                return Outcome(False, False, "该场次现在不在签到时间内，请刷新页面")
            match = session.find(code)
        event_id, at = str(uuid.uuid4()), clock.iso(now)
        payload = {
            "event_id": event_id,
            "session_id": session.id if session else None,
            match.field if match else field: code,
            "kind": kind,
            "at": at,
            "source": source,
        }
        if session is None:
            # Nothing to send it to; kept here as refused so that staff still see it.
            del payload["session_id"]
            event = NewEvent(event_id, "checkin", None, payload, at, REJECTED, NO_SESSION)
        else:
            event = NewEvent(event_id, "checkin", session.id, payload, at)
        try:
            await asyncio.to_thread(self.outbox.add, [event])
        except (sqlite3.Error, OSError):
            log.exception("cannot journal a check-in of %s", code)
            return Outcome(False, False, f"{code} 未能保存在本机（存储出错），请改用纸质签到表")
        if session is None:
            return Outcome(False, False, f"现在没有可签到的场次：{code} 未签到（已记录在本机）")
        self.link.new_events.set()
        word = KIND_WORDS[kind]
        if match is None:
            log.warning("%s %s: %s is not on the roster of %s", source, kind, code, session.id)
            text = f"{code} 不在本场次名单中：{word}已记录，将交服务器核验，请核对身份"
            return Outcome(True, False, text, event_id, session)
        member = match.member
        text = f"{word}成功：{member.name}（{member.member_no}）{now:%H:%M:%S}"
        return Outcome(True, True, text, event_id, session, member)

    async def attendees(self, session: Session) -> list[Attendee]:
        """Who is in now: the last in/out of each person, rejected events left out."""
        events = await asyncio.to_thread(self.outbox.session_events, "checkin", session.id)
        return present(session, events)


def present(session: Session, events: list[Event]) -> list[Attendee]:
    """Replay a session's check-ins in journal order: who checked in and not out."""
    inside: dict[str, Attendee] = {}
    for event in events:
        if event.state == REJECTED:
            continue
        code = str(event.payload.get("member_no") or event.payload.get("card_code") or "")
        match = session.find(code)
        key = match.member.member_no if match else code
        if event.payload.get("kind") == "in":
            if key not in inside:
                name = match.member.name if match else None
                inside[key] = Attendee(key, name, str(event.payload.get("at", "")))
        else:
            inside.pop(key, None)
    return sorted(inside.values(), key=lambda a: a.since)
