"""The venue's schedule: the last good copy from the server, the session of the moment, rosters."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from venue_agent.outbox import Outbox

log = logging.getLogger(__name__)

CHECKIN_MARGIN = timedelta(minutes=30)
# What a member_code (the text scanned or typed) may be: a member's number or a card's code.
CODE_FIELDS = ("member_no", "card_code")
SCHEDULE_KEY, ETAG_KEY, FETCHED_KEY = "schedule", "schedule_etag", "schedule_fetched_at"
# The zone every time is shown in when the server names none (a server older than the schedule's
# `timezone` field) or one this machine does not know: the server's own default.
DEFAULT_TIMEZONE = "Asia/Shanghai"


class ScheduleError(ValueError):
    """The server's schedule is not in the documented shape."""


@dataclass(frozen=True)
class RosterMember:
    """An expected member of a session."""

    member_no: str
    name: str
    card_code: str | None


@dataclass(frozen=True)
class Match:
    """A member_code found on a roster, and which of CODE_FIELDS it matched."""

    member: RosterMember
    code_field: str


@dataclass(frozen=True)
class Session:
    """One training session of this venue, as the schedule gives it."""

    public_id: str
    title: str
    topic_code: str
    starts_at: datetime
    ends_at: datetime
    state: str
    role: str
    roster: tuple[RosterMember, ...]

    def takes_checkins_at(self, now: datetime) -> bool:
        """True within [starts_at − 30 min, ends_at + 30 min]."""
        return self.starts_at - CHECKIN_MARGIN <= now <= self.ends_at + CHECKIN_MARGIN

    def distance_from(self, now: datetime) -> timedelta:
        """How far now is from [starts_at, ends_at): zero while the session is on."""
        if now < self.starts_at:
            return self.starts_at - now
        if now >= self.ends_at:
            return now - self.ends_at
        return timedelta(0)

    @cached_property
    def _codes(self) -> dict[str, Match]:
        # Replaying a big session's journal finds every event's member: one lookup each.
        codes = {m.card_code: Match(m, "card_code") for m in reversed(self.roster) if m.card_code}
        codes.update({m.member_no: Match(m, "member_no") for m in reversed(self.roster)})
        return codes

    def find(self, member_code: str) -> Match | None:
        """The roster member with this member_no, else with this card_code."""
        return self._codes.get(member_code)

    def search(self, text: str, limit: int = 50) -> list[RosterMember]:
        """Roster members whose name, number or card contains the text."""
        needle = text.strip().casefold()
        found = [
            m
            for m in self.roster
            if needle in m.name.casefold()
            or needle in m.member_no.casefold()
            or (m.card_code is not None and needle in m.card_code.casefold())
        ]
        return found[:limit]


def parse_time(raw: object, name: str) -> datetime:
    """An ISO 8601 time with an offset."""
    if not isinstance(raw, str):
        raise ScheduleError(f"{name} must be text")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ScheduleError(f"{name} is not an ISO 8601 time: {raw!r}") from None
    if value.tzinfo is None:
        raise ScheduleError(f"{name} has no UTC offset: {raw!r}")
    return value


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise ScheduleError(f"{name} must be text")
    return value


def _optional_text(raw: dict[str, Any], name: str) -> str | None:
    return None if raw.get(name) is None else _text(raw, name)


def schedule_timezone(raw: object) -> str:
    """The time zone a `GET schedule` answer names for every time shown (the server's
    HETANG_TIMEZONE); DEFAULT_TIMEZONE when it names none or one unknown here."""
    name = raw.get("timezone") if isinstance(raw, dict) else None
    if name is None:
        return DEFAULT_TIMEZONE
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("the server's time zone %r is unknown here; showing %s", name, DEFAULT_TIMEZONE)
        return DEFAULT_TIMEZONE
    return str(name)


def parse_schedule(raw: object) -> tuple[Session, ...]:
    """The sessions of a `GET schedule` answer, sorted by start."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sessions"), list):
        raise ScheduleError("the schedule must be an object with a list of sessions")
    sessions = []
    for item in raw["sessions"]:
        if not isinstance(item, dict) or not isinstance(item.get("roster"), list):
            raise ScheduleError("every session must be an object with a roster list")
        roster = []
        for entry in item["roster"]:
            if not isinstance(entry, dict):
                raise ScheduleError("every roster entry must be an object")
            roster.append(
                RosterMember(
                    member_no=_text(entry, "member_no"),
                    name=_text(entry, "name"),
                    card_code=_optional_text(entry, "card_code"),
                )
            )
        sessions.append(
            Session(
                public_id=_text(item, "id"),
                title=_text(item, "title"),
                topic_code=_text(item, "topic_code"),
                starts_at=parse_time(item.get("starts_at"), "starts_at"),
                ends_at=parse_time(item.get("ends_at"), "ends_at"),
                state=_text(item, "state"),
                role=_text(item, "role"),
                roster=tuple(roster),
            )
        )
    return tuple(sorted(sessions, key=lambda s: (s.starts_at, s.public_id)))


class ScheduleBook:
    """The schedule in memory and on disk (in the journal's meta table, written atomically),
    with the time zone the server shows times in."""

    def __init__(
        self,
        sessions: tuple[Session, ...] = (),
        etag: str | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        self.sessions = sessions
        self.etag = etag
        self.timezone = timezone

    @property
    def zone(self) -> ZoneInfo:
        """The time zone every time is shown in."""
        return ZoneInfo(self.timezone)

    def local(self, value: datetime) -> datetime:
        """A time in the zone times are shown in."""
        return value.astimezone(self.zone)

    @classmethod
    def load(cls, outbox: Outbox) -> ScheduleBook:
        """The last good copy kept on disk (an empty book when there is none)."""
        text = outbox.get_meta(SCHEDULE_KEY)
        if text is None:
            return cls()
        try:
            raw = json.loads(text)
            return cls(parse_schedule(raw), outbox.get_meta(ETAG_KEY), schedule_timezone(raw))
        except (ValueError, ScheduleError) as error:
            log.warning("the cached schedule cannot be read (%s); waiting for a fresh one", error)
            return cls()

    def replace(self, outbox: Outbox, raw: object, etag: str | None, fetched_at: str) -> None:
        """Keep a new schedule from the server; a malformed one changes nothing."""
        sessions, timezone = parse_schedule(raw), schedule_timezone(raw)
        outbox.set_meta(
            {
                SCHEDULE_KEY: json.dumps(raw, ensure_ascii=False),
                ETAG_KEY: etag or "",
                FETCHED_KEY: fetched_at,
            }
        )
        self.sessions, self.etag, self.timezone = sessions, etag or None, timezone

    def open_sessions(self, now: datetime) -> list[Session]:
        """Sessions taking check-ins now: the one on now first, then the nearest in time (a
        make-up held right after a lesson gets its own check-ins, not the lesson's), ties by
        start."""
        taking = [s for s in self.sessions if s.takes_checkins_at(now)]
        return sorted(taking, key=lambda s: s.distance_from(now))

    def current(self, now: datetime) -> Session | None:
        """The session check-ins go to now, if any."""
        sessions = self.open_sessions(now)
        return sessions[0] if sessions else None

    def session_for(self, member_code: str, now: datetime) -> tuple[Session | None, Match | None]:
        """The open session whose roster has this member_code (the one on now, else the
        nearest), else the current one."""
        sessions = self.open_sessions(now)
        for session in sessions:
            match = session.find(member_code)
            if match is not None:
                return session, match
        return (sessions[0] if sessions else None), None

    def upcoming(self, now: datetime) -> Session | None:
        """The current session, else the next one to start."""
        current = self.current(now)
        if current is not None:
            return current
        later = [s for s in self.sessions if s.starts_at > now]
        return later[0] if later else None

    def get(self, session_public_id: str) -> Session | None:
        """A session of the schedule by its public id."""
        return next((s for s in self.sessions if s.public_id == session_public_id), None)
