"""Monthly report rules (月报告): months and their boundaries, the pro-rated yearly requirement,
coverage, and rolling organizations' counts up into the figures of a subtree."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server.domain import validation as v
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR

MONTHS_IN_YEAR = 12
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
BAD_MONTH = "must be a month written YYYY-MM"
FUTURE_MONTH = "is a month still to come"
ONE_DECIMAL = Decimal("0.1")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in the local time zone."""

    year: int
    month: int

    @property
    def label(self) -> str:
        """The month as written in the API: YYYY-MM."""
        return f"{self.year:04d}-{self.month:02d}"

    def following(self) -> Month:
        """The next month."""
        if self.month == MONTHS_IN_YEAR:
            return Month(self.year + 1, 1)
        return Month(self.year, self.month + 1)

    def previous(self) -> Month:
        """The month before."""
        if self.month == 1:
            return Month(self.year - 1, MONTHS_IN_YEAR)
        return Month(self.year, self.month - 1)

    def starts(self, tz: ZoneInfo) -> datetime:
        """The first instant of the month in the local time zone, as UTC."""
        return datetime(self.year, self.month, 1, tzinfo=tz).astimezone(UTC)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[first instant, first instant of the next month) in local time, as UTC."""
        return self.starts(tz), self.following().starts(tz)

    def year_starts(self, tz: ZoneInfo) -> datetime:
        """January 1 of the month's year in local time, as UTC."""
        return Month(self.year, 1).starts(tz)


def month_of(moment: datetime, tz: ZoneInfo) -> Month:
    """The local calendar month an instant falls in."""
    local = moment.astimezone(tz)
    return Month(local.year, local.month)


def parse_month(raw: Mapping[str, object], name: str, problems: v.Problems) -> Month | None:
    """A month written YYYY-MM (two-digit month, years FIRST_YEAR..LAST_YEAR)."""
    value = raw.get(name)
    if value is None or value == "":
        problems[name] = v.REQUIRED
        return None
    match = MONTH_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        problems[name] = BAD_MONTH
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (FIRST_YEAR <= year <= LAST_YEAR and 1 <= month <= MONTHS_IN_YEAR):
        problems[name] = BAD_MONTH
        return None
    return Month(year, month)


@dataclass(frozen=True)
class ReportQuery:
    """Which report: an organization's code and a month that has begun."""

    org: str
    month: Month


def parse_report_query(
    raw: Mapping[str, object], current: Month
) -> tuple[ReportQuery | None, v.Problems]:
    """Check `org` and `month`; a month after `current` has no report yet."""
    problems = v.Problems()
    org = v.code(raw, "org", problems)
    month = parse_month(raw, "month", problems)
    if month is not None and month > current:
        problems["month"] = FUTURE_MONTH
        month = None
    if problems or org is None or month is None:
        return None, problems
    return ReportQuery(org, month), problems


def scaled_requirement(required: Decimal, month: Month) -> int:
    """The yearly requirement pro-rated to the month's end, times 12, in hundredths of an hour:
    a member is below it when 12 × earned hundredths < this (exact, no rounding)."""
    hundredths = required * 100
    if hundredths != hundredths.to_integral_value():
        raise ValueError("a requirement has at most two decimals")
    return int(hundredths) * month.month


def is_below_requirement(earned: Decimal, required: Decimal, month: Month) -> bool:
    """True when the hours earned by the month's end fall short of requirement × months ÷ 12."""
    return earned * 100 * MONTHS_IN_YEAR < scaled_requirement(required, month)


def runs_in_month(runs: int, months: Iterable[int], month: int) -> int:
    """A plan class's runs planned for one month: its runs spread evenly over the months it
    names (over all twelve when it names none), the remainder going to the earliest months."""
    spread = sorted({m for m in months if 1 <= m <= MONTHS_IN_YEAR}) or list(
        range(1, MONTHS_IN_YEAR + 1)
    )
    if month not in spread:
        return 0
    base, extra = divmod(runs, len(spread))
    return base + (1 if spread.index(month) < extra else 0)


def coverage_pct(trained: int, total: int) -> Decimal:
    """trained ÷ total × 100 to one decimal, half up; 0.0 for an organization with no members."""
    if total <= 0:
        return Decimal("0.0")
    return (Decimal(trained) * 100 / Decimal(total)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Tally:
    """Counts that add up across organizations (each member belongs to one organization, each
    session to one owner): of one organization's own members, or of a whole subtree."""

    members_total: int = 0
    members_trained_month: int = 0
    members_trained_ytd: int = 0
    below_requirement: int = 0
    person_times: int = 0
    makeup_person_times: int = 0  # of person_times, those in make-up sessions (补学)
    repeat_blocked: int = 0
    partial_outage: int = 0
    conflicts: int = 0
    runs_held: int = 0
    runs_planned: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Tally)))


@dataclass(frozen=True)
class OrgFacts:
    """What the database says about one organization's own members and sessions in a month."""

    code: str
    path: str
    tally: Tally = Tally()
    sessions: frozenset[int] = frozenset()  # the month's sessions any own member took part in


@dataclass(frozen=True)
class Figures:
    """The monthly report of one organization's subtree."""

    org: str
    month: Month
    tally: Tally
    sessions_held: int
    children: tuple[Figures, ...] = field(default=())

    @property
    def coverage_ytd_pct(self) -> Decimal:
        """Members with credit since January 1 as a share of all members, in percent."""
        return coverage_pct(self.tally.members_trained_ytd, self.tally.members_total)

    @property
    def untrained_ytd(self) -> int:
        """Members with no credit since January 1."""
        return self.tally.members_total - self.tally.members_trained_ytd

    def as_json(self) -> dict[str, Any]:
        """The report in the API's words (issue 5), with each child's."""
        return {**self.own_json(), "children": [child.as_json() for child in self.children]}

    def own_json(self) -> dict[str, Any]:
        """The organization's figures in the API's words, without its children's."""
        t = self.tally
        return {
            "org": self.org,
            "month": self.month.label,
            "members_total": t.members_total,
            "sessions_held": self.sessions_held,
            "person_times": t.person_times,
            "makeup_person_times": t.makeup_person_times,
            "members_trained_month": t.members_trained_month,
            "members_trained_ytd": t.members_trained_ytd,
            "coverage_ytd_pct": float(self.coverage_ytd_pct),
            "untrained_ytd": self.untrained_ytd,
            "below_requirement": t.below_requirement,
            "repeat_blocked": t.repeat_blocked,
            "partial_outage": t.partial_outage,
            "conflicts": t.conflicts,
            "plan_progress": {"runs_planned": t.runs_planned, "runs_held": t.runs_held},
        }


def subtree_figures(code: str, path: str, month: Month, orgs: Iterable[OrgFacts]) -> Figures:
    """The figures of the subtree at `path`: counts added up, sessions counted once."""
    tally, sessions = Tally(), set[int]()
    for facts in orgs:
        if facts.path.startswith(path):
            tally = tally + facts.tally
            sessions |= facts.sessions
    return Figures(code, month, tally, len(sessions))


def monthly_report(
    root: OrgFacts, children: Iterable[OrgFacts], month: Month, orgs: Iterable[OrgFacts]
) -> Figures:
    """The report of `root`'s subtree with one level of children, each for its own subtree
    (their own children are not nested: `children` is empty for them)."""
    every = list(orgs)
    ordered = sorted(children, key=lambda child: child.code)
    nested = tuple(subtree_figures(c.code, c.path, month, every) for c in ordered)
    whole = subtree_figures(root.code, root.path, month, every)
    return Figures(whole.org, month, whole.tally, whole.sessions_held, nested)
