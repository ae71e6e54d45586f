"""The session form: what was typed, turned into parse_session's mapping, problems by form field.

The rules stay in server/domain/sessions.py; this module only translates between the form's
fields (local date-times, a percentage, roster lines typed, uploaded or drawn from organizations)
and the JSON-like mapping the API accepts, and maps each problem back to the field it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy

from server.domain.attendance import RATIO_RANGE, Policy
from server.domain.roster_csv import read_roster_file
from server.domain.sessions import RosterLine, SessionFields, parse_session
from server.pages.forms import FormProblem
from server.pages.render import hours_text
from server.services.session_views import SessionView

Posted = MultiDictProxy[str | bytes | bytearray | web.FileField]
ORG_ROWS = 3
MAX_TEXT = 400_000  # a field's text; typed roster lines are bounded by the body limit alone
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"
TEXT_FIELDS = (
    "title",
    "topic_code",
    "starts_at",
    "ends_at",
    "credit_hours",
    "main_venue",
    "other_branches",
    "min_ratio_pct",
    "late_grace_min",
    "early_grace_min",
    "stats_interval_s",
    "roster_lines",
    "plan_class",
    "replay_of",
)
WHOLE_FIELDS = ("late_grace_min", "early_grace_min", "stats_interval_s")
SEPARATORS = re.compile(r"[\s,，;；]+")
WHOLE = re.compile(r"[+-]?\d{1,9}")

NOT_A_TIME = "must be a date and time"
PERCENT_RANGE = "must be more than 0 and at most 100"
LINE_SHAPE = "needs a member number and a venue code"
ROW_INCOMPLETE = "needs both an organization and a venue"
FORM_PROBLEMS = "Some fields are missing or wrong."
LINE_PROBLEM = "Line {line}: {problem}"
LINE_VALUE_PROBLEM = "Line {line} ({value}): {problem}"
VALUE_PROBLEM = "{value} in the file: {problem}"
MORE_PROBLEMS = "The first {shown} of {count} problems are listed."


@dataclass(frozen=True)
class SessionForm:
    """The session form's values as text, the way the page shows them."""

    values: dict[str, str]
    branches: tuple[str, ...] = ()
    org_rows: tuple[tuple[str, str], ...] = ()
    verify: bool = True
    upload: tuple[str, IO[bytes]] | None = None  # the roster file, as aiohttp spooled it

    def get(self, name: str, default: str = "") -> str:
        """A text value (for the template)."""
        return self.values.get(name, default)

    def year(self, default: int) -> int:
        """The year the session starts in (whose plans' classes it may be a run of)."""
        text = self.get("starts_at")[:4]
        return int(text) if text.isascii() and text.isdigit() else default

    def org_row(self, index: int) -> tuple[str, str]:
        """The organization and venue chosen in one "all members of" row."""
        return self.org_rows[index] if index < len(self.org_rows) else ("", "")

    @classmethod
    def blank(cls) -> SessionForm:
        """A new session's form with ATTENDANCE.md's policy defaults filled in."""
        return cls(_policy_values(Policy()))

    @classmethod
    def makeup_of(cls, lesson: SessionView) -> SessionForm:
        """A make-up session's form (补学) for a lesson: its title, topic and hours, playing its
        recording; the roster left empty takes the lesson's make-up list."""
        values = _policy_values(Policy())
        values |= {
            "title": f"补学：{lesson.title}",
            "topic_code": lesson.topic_code,
            "credit_hours": hours_text(lesson.credit_hours),
            "replay_of": lesson.id,
            "replay_title": lesson.title,
        }
        return cls(values)

    @classmethod
    def of(cls, fields: SessionFields, tz: ZoneInfo, listed: Iterable[str]) -> SessionForm:
        """A stored session's form, for editing; branches without a box go in the text field."""
        shown = set(listed)
        values = {
            "title": fields.title,
            "topic_code": fields.topic_code,
            "starts_at": local_minute(fields.starts_at, tz),
            "ends_at": local_minute(fields.ends_at, tz),
            "credit_hours": hours_text(fields.credit_hours),
            "main_venue": fields.main_venue,
            "other_branches": " ".join(c for c in fields.branch_venues if c not in shown),
            "roster_lines": "\n".join(f"{line.member_no} {line.venue}" for line in fields.roster),
            "plan_class": str(fields.plan_class) if fields.plan_class else "",
            "replay_of": fields.replay_of or "",
            **_policy_values(fields.policy),
        }
        branches = tuple(code for code in fields.branch_venues if code in shown)
        return cls(values, branches, (), fields.policy.require_stream_verification)

    @classmethod
    def from_post(cls, data: Posted) -> SessionForm:
        """The submitted form (multipart or urlencoded)."""
        values = {}
        for name in TEXT_FIELDS:
            value = data.get(name)
            if not isinstance(value, str):
                value = ""
            # A stored roster of 200,000 lines comes back whole in its text area: never cut it.
            values[name] = value if name == "roster_lines" else value[:MAX_TEXT]
        boxes = data.getall("branch_venues", [])
        branches = tuple(dict.fromkeys(b.strip() for b in boxes if isinstance(b, str) and b))
        rows = tuple(
            (_text(data, f"org_{index}"), _text(data, f"org_venue_{index}"))
            for index in range(ORG_ROWS)
        )
        upload = data.get("roster_file")
        file = (
            (upload.filename, upload.file)
            if isinstance(upload, web.FileField) and upload.filename
            else None
        )
        verify = data.get("require_stream_verification") == "on"
        return cls(values, branches, rows, verify, file)


def _text(data: Posted, name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _policy_values(policy: Policy) -> dict[str, str]:
    return {
        "min_ratio_pct": hours_text(policy.min_ratio * 100),
        "late_grace_min": str(policy.late_grace_min),
        "early_grace_min": str(policy.early_grace_min),
        "stats_interval_s": str(policy.stats_interval_s),
    }


def local_minute(moment: datetime, tz: ZoneInfo) -> str:
    """A UTC time as a datetime-local input's value in the configured zone."""
    return moment.astimezone(tz).strftime(LOCAL_MINUTE)


def _instant(text: str, tz: ZoneInfo) -> str | None:
    """A datetime-local value (wall-clock time in the configured zone) as ISO 8601 in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):  # not a time, or one the calendar cannot hold in UTC
        return None


@dataclass(frozen=True)
class Origin:
    """Where a roster line came from: a form field and, for typed or uploaded lines, its line."""

    field: str
    line: int | None = None


@dataclass
class Draft:
    """The mapping for parse_session being built, with the problems found on the way."""

    gettext: Callable[[str], str]
    raw: dict[str, Any] = field(default_factory=dict)
    origins: list[Origin] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    rostered: set[str] = field(default_factory=set)

    def problem(self, name: str, message: str) -> None:
        """Note a problem (already in the reader's language) next to a form field."""
        found = self.problems.setdefault(name, [])
        if message not in found:
            found.append(message)

    def add_written(self, lines: Iterable[tuple[Origin, RosterLine]]) -> None:
        """Roster lines somebody wrote: repeats are left for the rules to report."""
        for origin, line in lines:
            self._add(origin, line)

    def add_drawn(self, origin: Origin, lines: Iterable[RosterLine]) -> None:
        """Roster lines drawn from an organization: members already on the roster keep their
        first venue (a member typed in by number wins over "everybody of the county")."""
        for line in lines:
            if line.member_no not in self.rostered:
                self._add(origin, line)

    def _add(self, origin: Origin, line: RosterLine) -> None:
        self.raw["roster"].append({"member_no": line.member_no, "venue": line.venue})
        self.origins.append(origin)
        self.rostered.add(line.member_no)

    def finish(self) -> SessionFields | None:
        """Check the whole mapping with the session rules; None when anything is wrong."""
        fields, found = parse_session(self.raw)
        venues_wrong = "main_venue" in found or "branch_venues" in found
        for name, problem in found.items():
            self._place(name, problem, skip_roster_venues=venues_wrong)
        return None if self.problems or fields is None else fields

    def _place(self, name: str, problem: str, *, skip_roster_venues: bool) -> None:
        gettext = self.gettext
        if name.startswith("roster["):
            index_text, _, part = name[len("roster[") :].partition("].")
            if part == "venue" and skip_roster_venues:
                return  # every line would repeat the venue problem shown above
            index = int(index_text)
            origin = self.origins[index]
            value = str(self.raw["roster"][index].get(part, ""))
            if origin.line is not None:
                text = gettext(LINE_VALUE_PROBLEM).format(
                    line=origin.line, value=value, problem=gettext(problem)
                )
            elif origin.field == "roster_file":
                text = gettext(VALUE_PROBLEM).format(value=value, problem=gettext(problem))
            else:
                text = gettext(problem)
            self.problem(origin.field, text)
            return
        if name.startswith("policy."):
            name = name[len("policy.") :]
            if name == "min_ratio":
                name = "min_ratio_pct"
                problem = PERCENT_RANGE if problem == RATIO_RANGE else problem
        if name not in self.problems:  # the form's own problem on a field says it better
            self.problem(name, gettext(problem))

    def form_problem(self) -> FormProblem:
        """Everything found, for the form to show next to its fields."""
        return FormProblem(
            "session",
            self.gettext(FORM_PROBLEMS),
            {name: "\n".join(messages) for name, messages in self.problems.items()},
        )


def start_draft(form: SessionForm, tz: ZoneInfo, gettext: Callable[[str], str]) -> Draft:
    """The mapping from everything on the form that needs no database: roster lines typed in and
    uploaded are read here; organizations are drawn by the caller (Draft.add_drawn)."""
    draft = Draft(gettext)
    raw = draft.raw
    for name in ("title", "topic_code", "credit_hours", "main_venue", "plan_class", "replay_of"):
        raw[name] = form.get(name).strip() or None
    for name in ("starts_at", "ends_at"):
        text = form.get(name).strip()
        raw[name] = _instant(text, tz) if text else None
        if text and raw[name] is None:
            draft.problem(name, gettext(NOT_A_TIME))
    others = [code for code in SEPARATORS.split(form.get("other_branches")) if code]
    raw["branch_venues"] = list(dict.fromkeys([*form.branches, *others]))
    raw["policy"] = _policy(form)
    raw["roster"] = []
    draft.add_written(_typed_lines(form.get("roster_lines"), draft))
    if form.upload is not None:
        read = read_roster_file(form.upload[1])
        for row in read.problems:
            text = gettext(LINE_PROBLEM).format(line=row.line, problem=row.render(gettext))
            draft.problem("roster_file", text)
        if read.count > len(read.problems):
            more = gettext(MORE_PROBLEMS).format(shown=len(read.problems), count=read.count)
            draft.problem("roster_file", more)
        if not read.count:  # all or nothing: a file with a bad line adds none of its lines
            draft.add_written((Origin("roster_file"), line) for line in read.lines)
    for index, (org, venue) in enumerate(form.org_rows):
        if bool(org) != bool(venue):
            draft.problem(f"org_{index}", gettext(ROW_INCOMPLETE))
    return draft


def _policy(form: SessionForm) -> dict[str, Any]:
    policy: dict[str, Any] = {"require_stream_verification": form.verify}
    percent = form.get("min_ratio_pct").strip().rstrip("%")
    if percent:
        try:
            policy["min_ratio"] = Decimal(percent) / 100
        except ArithmeticError:  # InvalidOperation and its kin
            policy["min_ratio"] = percent  # the rules say what is wrong with it
    for name in WHOLE_FIELDS:
        text = form.get(name).strip()
        if text:
            policy[name] = int(text) if WHOLE.fullmatch(text) else text
    return policy


def _typed_lines(text: str, draft: Draft) -> list[tuple[Origin, RosterLine]]:
    """ "member_no venue" or "member_no,venue", one a line; blank lines and # notes skipped."""
    lines: list[tuple[Origin, RosterLine]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = [part for part in SEPARATORS.split(line.strip()) if part]
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2:
            message = draft.gettext(LINE_PROBLEM).format(
                line=number, problem=draft.gettext(LINE_SHAPE)
            )
            draft.problem("roster_lines", message)
            continue
        lines.append((Origin("roster_lines", number), RosterLine(parts[0], parts[1])))
    return lines


def field_problems(problem: FormProblem | None) -> Mapping[str, str]:
    """The problems of the session form by field (empty for another form's problem)."""
    return problem.fields if problem is not None and problem.form == "session" else {}
