"""The check-in desk: a scan or a click becomes a journaled event, and a line staff can read."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from venue_agent import clock
from venue_agent.link import Link
from venue_agent.outbox import REJECTED, SENT, Event, NewEvent, Outbox
from venue_agent.schedule import CODE_FIELDS, Match, RosterMember, ScheduleBook, Session

log = logging.getLogger(__name__)

# PROTOCOL.md's check-in kinds and sources (the agent does not import the server's vocabulary).
KINDS = ("in", "out")
SOURCES = ("scanner", "manual", "import", "qr")
MAX_CODE_LENGTH = 128
NO_SESSION = "no_session"  # a local reason: there was no session to send the scan to
KIND_WORDS = MappingProxyType({"in": "签到", "out": "签退"})


@dataclass(frozen=True)
class CheckinReceipt:
    """What became of one scan or click, as staff are told."""

    queued: bool  # journaled to be sent
    known: bool  # on the session's roster
    message: str  # for staff, in Chinese
    event_id: str | None = None
    session: Session | None = None
    member: RosterMember | None = None
    # Journaled, but it changes nothing: a 签到 of someone already in (the server ignores it
    # too), or a 签退 of someone not in.
    redundant: bool = False

    @property
    def alarm(self) -> bool:
        """True when staff should look up: unknown code, nothing to check in to, a repeat."""
        return self.redundant or not (self.queued and self.known)


@dataclass(frozen=True)
class Attendee:
    """Someone checked in (and not out) at this venue for a session: by member_no when the
    roster knows them, else by the member_code scanned."""

    member_code: str
    name: str | None
    since: str

    def as_json(self) -> dict[str, str | None]:
        """As the staff page reads it."""
        return {"code": self.member_code, "name": self.name, "since": self.since}


def clean_code(scanned: str) -> str:
    """The scanned text without surrounding blanks or control characters: a member_code."""
    return "".join(ch for ch in scanned if ch.isprintable()).strip()


class Desk:
    """Turns codes into check-in events: journaled first, then reported."""

    def __init__(self, outbox: Outbox, book: ScheduleBook, link: Link) -> None:
        self.outbox, self.book, self.link = outbox, book, link
        self.scan_kind = "in"  # what a scanner line means; staff switch it on the page
        # A click and a scan of the same person at once must not both read "not in yet".
        self._journaling = asyncio.Lock()

    async def check(
        self,
        scanned: str,
        *,
        kind: str,
        source: str,
        session_public_id: str | None = None,
        code_field: str = "card_code",
    ) -> CheckinReceipt:
        """Journal one check-in of the member_code scanned (or typed); `code_field` says what
        it is when it is on no roster."""
        if kind not in KINDS or source not in SOURCES or code_field not in CODE_FIELDS:
            raise ValueError(
                f"bad check-in: kind={kind!r} source={source!r} code_field={code_field!r}"
            )
        member_code = clean_code(scanned)
        if not member_code or len(member_code) > MAX_CODE_LENGTH:
            return CheckinReceipt(False, False, f"无法识别的扫码内容（{len(member_code)} 个字符）")
        async with self._journaling:
            return await self._check(member_code, kind, source, session_public_id, code_field)

    async def _check(
        self,
        member_code: str,
        kind: str,
        source: str,
        session_public_id: str | None,
        code_field: str,
    ) -> CheckinReceipt:
        now = clock.now()
        if session_public_id is None:
            session, match = self.book.session_for(member_code, now)
        else:
            session = self.book.get(session_public_id)
            if session is None or not session.takes_checkins_at(now):
                return CheckinReceipt(False, False, "该场次现在不在签到时间内，请刷新页面")
            match = session.find(member_code)
        event_id, at = str(uuid.uuid4()), clock.iso(now)
        payload = {
            "event_id": event_id,
            "session_id": session.public_id if session else None,
            match.code_field if match else code_field: member_code,
            "kind": kind,
            "at": at,
            "source": source,
        }
        inside: Attendee | None = None
        if session is None:
            # Nothing to send it to; kept here as refused so that staff still see it.
            del payload["session_id"]
            event = NewEvent(event_id, "checkin", None, payload, at, REJECTED, NO_SESSION)
        else:
            event = NewEvent(event_id, "checkin", session.public_id, payload, at)
            key = match.member.member_no if match else member_code
            inside = next((a for a in await self.attendees(session) if a.member_code == key), None)
        try:
            await asyncio.to_thread(self.outbox.add, [event])
        except (sqlite3.Error, OSError):
            log.exception("cannot journal a check-in of %s", member_code)
            text = f"{member_code} 未能保存在本机（存储出错），请改用纸质签到表"
            return CheckinReceipt(False, False, text)
        if session is None:
            text = f"现在没有可签到的场次：{member_code} 未签到（已记录在本机）"
            return CheckinReceipt(False, False, text)
        self.link.new_events.set()
        if match is None:
            log.warning(
                "%s %s: %s is not on the roster of %s",
                source,
                kind,
                member_code,
                session.public_id,
            )
        text, redundant = self._wording(kind, match, member_code, inside, now)
        member = match.member if match else None
        return CheckinReceipt(True, match is not None, text, event_id, session, member, redundant)

    def _wording(
        self,
        kind: str,
        match: Match | None,
        member_code: str,
        inside: Attendee | None,
        now: datetime,
    ) -> tuple[str, bool]:
        """What staff are told of a journaled check-in, and whether it changed nothing (a 签到
        of someone in, a 签退 of someone out): the page and the scanner never contradict the
        list of who is in."""
        word = KIND_WORDS[kind]
        who = f"{match.member.name}（{match.member.member_no}）" if match else member_code
        if kind == "in" and inside is not None:
            return f"已在场：{who} 已于 {self._since(inside)} 签到，本次重复签到不另计", True
        if kind == "out" and inside is None:
            return f"未在场：{who} 现在没有签到，本次签退不计入，请核对", True
        if match is None:
            return f"{who} 不在本场次名单中：{word}已记录，将交服务器核验，请核对身份", False
        return f"{word}成功：{who} {self._clock_time(now)}", False

    def _since(self, attendee: Attendee) -> str:
        try:
            return self._clock_time(datetime.fromisoformat(attendee.since))
        except ValueError:
            return attendee.since

    def _clock_time(self, value: datetime) -> str:
        """A time of day as staff read it: in the server's time zone, like every time shown."""
        return f"{self.book.local(value):%H:%M:%S}"

    def recorded(self, event: dict[str, object]) -> None:
        """Journal a check-in the server took itself (a member's phone, source `self`) as
        already sent, so the staff page lists it and the uploader never sends it."""
        event_id, session_public_id = event.get("event_id"), event.get("session_id")
        member_no, kind, at = event.get("member_no"), event.get("kind"), event.get("at")
        if not (
            isinstance(event_id, str)
            and isinstance(session_public_id, str)
            and isinstance(member_no, str)
            and isinstance(at, str)
            and kind in KINDS
        ):
            log.warning("ignored a malformed checkin_recorded event")
            return
        payload = {
            "event_id": event_id,
            "session_id": session_public_id,
            "member_no": member_no,
            "kind": kind,
            "at": at,
            "source": "self",
        }
        try:
            self.outbox.add([NewEvent(event_id, "checkin", session_public_id, payload, at, SENT)])
        except (sqlite3.Error, OSError):
            log.exception("cannot journal the self check-in %s", event_id)

    async def attendees(self, session: Session) -> list[Attendee]:
        """Who is in now: the last in/out of each person, rejected events left out."""
        events = await asyncio.to_thread(self.outbox.session_events, "checkin", session.public_id)
        return present(session, events)


def present(session: Session, events: list[Event]) -> list[Attendee]:
    """Replay a session's check-ins in journal order: who checked in and not out."""
    inside: dict[str, Attendee] = {}
    for event in events:
        if event.state == REJECTED:
            continue
        member_code = str(event.payload.get("member_no") or event.payload.get("card_code") or "")
        match = session.find(member_code)
        key = match.member.member_no if match else member_code
        if event.payload.get("kind") == "in":
            if key not in inside:
                name = match.member.name if match else None
                inside[key] = Attendee(key, name, str(event.payload.get("at", "")))
        else:
            inside.pop(key, None)
    return sorted(inside.values(), key=lambda a: a.since)
