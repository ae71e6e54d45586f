"""Training-session rules: the fields of a new session, its roster, and the state machine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from server.domain import validation as v
from server.domain.attendance import Policy
from server.domain.times import parse_instant
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR

MAX_CREDIT_HOURS = Decimal(100)
MAX_SESSION_LENGTH = timedelta(days=3)
MAX_BRANCHES = 1000
CHECKIN_MARGIN = timedelta(minutes=30)
OUTSIDE_THE_YEARS = "must lie between the years 2000 and 2099"  # FIRST_YEAR and LAST_YEAR
# action → (states it may start from, state it leads to)
TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = MappingProxyType(
    {
        "start": (frozenset({"scheduled"}), "live"),
        "end": (frozenset({"live"}), "ended"),
        "finalize": (frozenset({"ended", "finalized"}), "finalized"),
        "approve": (frozenset({"finalized"}), "approved"),
        "reopen": (frozenset({"approved"}), "finalized"),
    }
)


@dataclass(frozen=True)
class RosterLine:
    """One expected member and the venue they are assigned to."""

    member_no: str
    venue: str


@dataclass(frozen=True)
class ClassRef:
    """A class of a filed plan, named as its page is: organization, year, class code."""

    org_code: str
    year: int
    code: str

    def __str__(self) -> str:
        return f"{self.org_code}/{self.year}/{self.code}"


NOT_A_CLASS_REF = "must name a plan class as ORGANIZATION/YEAR/CLASS"


def parse_class_ref(raw: Mapping[str, object], name: str, problems: v.Problems) -> ClassRef | None:
    """An optional "ORG/YEAR/CLASS" reference; absent or blank means none."""
    value = v.text(raw, name, problems, max_len=200, optional=True)
    if value is None:
        return None
    org_code, _, rest = value.partition("/")
    year, _, class_code = rest.partition("/")
    if not (
        v.CODE_PATTERN.match(org_code)
        and v.CODE_PATTERN.match(class_code)
        and year.isascii()
        and year.isdigit()
        and FIRST_YEAR <= int(year) <= LAST_YEAR
    ):
        problems[name] = NOT_A_CLASS_REF
        return None
    return ClassRef(org_code, int(year), class_code)


@dataclass(frozen=True)
class SessionFields:
    """A new session as given, already checked."""

    title: str
    topic_code: str
    starts_at: datetime
    ends_at: datetime
    credit_hours: Decimal
    main_venue: str
    branch_venues: tuple[str, ...]
    policy: Policy
    roster: tuple[RosterLine, ...]
    plan_class: ClassRef | None = None  # the plan class (班次) this session is a run of
    replay_of: str | None = None  # a make-up session (补学): the session whose recording it plays

    @property
    def venues(self) -> tuple[str, ...]:
        """The main venue, then the branches."""
        return (self.main_venue, *self.branch_venues)


def next_state(action: str, state: str) -> str | None:
    """The state an action leads to from this state, or None when it is not allowed."""
    allowed, target = TRANSITIONS[action]
    return target if state in allowed else None


def accepts_checkin_at(starts_at: datetime, ends_at: datetime, at: datetime) -> bool:
    """Check-ins count within [S − 30 min, E + 30 min], whenever they arrive."""
    return starts_at - CHECKIN_MARGIN <= at <= ends_at + CHECKIN_MARGIN


def _hours(raw: Mapping[str, object], problems: v.Problems) -> Decimal | None:
    value = raw.get("credit_hours")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems["credit_hours"] = v.REQUIRED if value is None else "must be a number"
        return None
    try:
        hours = Decimal(str(value))
    except InvalidOperation:
        problems["credit_hours"] = "must be a number"
        return None
    if not hours.is_finite() or hours <= 0 or hours > MAX_CREDIT_HOURS:
        problems["credit_hours"] = "must be more than 0 and at most 100"
        return None
    if hours != hours.quantize(Decimal("0.01")):
        problems["credit_hours"] = "may have at most two decimals"
        return None
    return hours


def _window(raw: Mapping[str, object], problems: v.Problems) -> tuple[datetime, datetime] | None:
    starts_at = parse_instant(raw.get("starts_at"))
    ends_at = parse_instant(raw.get("ends_at"))
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None:
            problems[name] = "must be an ISO 8601 time with an offset"
    if starts_at is None or ends_at is None:
        return None
    if ends_at <= starts_at:
        problems["ends_at"] = "must be after the start"
        return None
    if ends_at - starts_at > MAX_SESSION_LENGTH:
        problems["ends_at"] = "is more than three days after the start"
        return None
    if starts_at.year < FIRST_YEAR or ends_at.year > LAST_YEAR:
        problems["starts_at" if starts_at.year < FIRST_YEAR else "ends_at"] = OUTSIDE_THE_YEARS
        return None
    return starts_at.replace(microsecond=0), ends_at.replace(microsecond=0)


def _branches(raw: Mapping[str, object], main: str | None, problems: v.Problems) -> tuple[str, ...]:
    value = raw.get("branch_venues", [])
    if not isinstance(value, list) or len(value) > MAX_BRANCHES:
        problems["branch_venues"] = "must be a list of venue codes"
        return ()
    codes: list[str] = []
    for item in value:
        if not isinstance(item, str) or not v.CODE_PATTERN.match(item):
            problems["branch_venues"] = "must be a list of venue codes"
            return ()
        if item == main or item in codes:
            problems["branch_venues"] = "repeats a venue"
            return ()
        codes.append(item)
    return tuple(codes)


def _roster(
    raw: Mapping[str, object], venues: set[str], problems: v.Problems
) -> tuple[RosterLine, ...]:
    value = raw.get("roster", [])
    if not isinstance(value, list):
        problems["roster"] = "must be a list of {member_no, venue}"
        return ()
    lines: list[RosterLine] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            problems["roster"] = "must be a list of {member_no, venue}"
            return ()
        member_no, venue = item.get("member_no"), item.get("venue")
        if not isinstance(member_no, str) or not v.CODE_PATTERN.match(member_no):
            problems[f"roster[{index}].member_no"] = "is not a member number"
        elif member_no in seen:
            problems[f"roster[{index}].member_no"] = "repeats a member"
        elif not isinstance(venue, str) or venue not in venues:
            problems[f"roster[{index}].venue"] = "is not a venue of this session"
        else:
            seen.add(member_no)
            lines.append(RosterLine(member_no, venue))
        if len(problems) >= 50:
            break
    return tuple(lines)


def parse_session(raw: Mapping[str, Any]) -> tuple[SessionFields | None, v.Problems]:
    """Check a new session's fields (venues and members are looked up by the service)."""
    problems = v.Problems()
    title = v.text(raw, "title", problems)
    topic_code = v.code(raw, "topic_code", problems)
    window = _window(raw, problems)
    hours = _hours(raw, problems)
    main = v.code(raw, "main_venue", problems)
    branches = _branches(raw, main, problems)
    policy, policy_problems = Policy.from_json(raw.get("policy"))
    problems.update(
        {
            name if name == "policy" else f"policy.{name}": problem
            for name, problem in policy_problems.items()
        }
    )
    roster = _roster(raw, {main or "", *branches}, problems)
    plan_class = parse_class_ref(raw, "plan_class", problems)
    replay_of = _replay_of(raw, problems)
    if (
        problems
        or title is None
        or topic_code is None
        or window is None
        or hours is None
        or main is None
        or policy is None
    ):
        return None, problems
    return SessionFields(
        title,
        topic_code,
        window[0],
        window[1],
        hours,
        main,
        branches,
        policy,
        roster,
        plan_class,
        replay_of,
    ), problems


def _replay_of(raw: Mapping[str, object], problems: v.Problems) -> str | None:
    value = raw.get("replay_of")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not v.CODE_PATTERN.match(value):
        problems["replay_of"] = "is not a session id"
        return None
    return value
