"""Training-plan rules (培训计划备案): a plan's fields, its review states, and the arithmetic of
its analysis (who has not filed, planned vs members, progress per class)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from server.domain import validation as v
from server.domain.members import hours_number
from server.domain.reports import coverage_pct
from server.domain.vocabulary import (
    EDITABLE_PLAN_STATES,
    FILED_PLAN_STATES,
    FIRST_YEAR,
    LAST_YEAR,
    MEMBER_CATEGORIES,
)

MAX_RUNS = 1000
MAX_TRAINEES = 1_000_000
MAX_HOURS = Decimal(200)
MAX_CLASSES = 100
MAX_LIST = 50  # topics, target organizations of one class
MAX_COMMENT = 1000
# Levels that file a plan; branches (党支部) train within their committee's plan.
FILING_LEVELS = frozenset({"city", "county", "committee"})
# action → (states it may start from, state it leads to)
TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = MappingProxyType(
    {
        "file": (frozenset(EDITABLE_PLAN_STATES), "filed"),
        "accept": (frozenset({"filed"}), "accepted"),
        "return": (frozenset({"filed"}), "returned"),
    }
)
WHOLE = re.compile(r"^[+-]?\d{1,9}$")

NOT_WHOLE = "must be a whole number"
HOURS_RANGE = "must be more than 0 and at most 200"
HOURS_DECIMALS = "may have at most two decimals"
NOT_NUMBER = "must be a number"
RANGE_MESSAGES = MappingProxyType(
    {
        "year": "must be between 2000 and 2099",  # FIRST_YEAR and LAST_YEAR
        "runs_planned": "must be between 0 and 1000",
        "trainees_planned": "must be between 0 and 1000000",
    }
)
MONTHS_SHAPE = "must be a list of months 1 to 12"
MONTH_REPEATED = "repeats a month"
CODES_SHAPE = "must be a list of codes"
CODE_REPEATED = "repeats a code"
CATEGORY_UNKNOWN = "names an unknown member category"
CLASSES_SHAPE = "must be a list of classes"
CLASSES_TOO_MANY = "has more than 100 classes"
CLASS_SHAPE = "must be an object"
CLASS_REPEATED = "repeats the code of another class"
NOT_YES_NO = "must be true or false"


@dataclass(frozen=True)
class ClassFields:
    """A class (班次) of a plan as given, already checked."""

    code: str
    title: str
    runs_planned: int
    trainees_planned: int
    hours_per_run: Decimal
    topics: tuple[str, ...]
    months: tuple[int, ...]
    target_categories: tuple[str, ...]
    target_org_codes: tuple[str, ...]
    first_lesson: bool

    def to_json(self) -> dict[str, Any]:
        """The class in the API's (and the audit trail's) words."""
        hours = self.hours_per_run
        return {
            "code": self.code,
            "title": self.title,
            "runs_planned": self.runs_planned,
            "trainees_planned": self.trainees_planned,
            "hours_per_run": hours_number(hours),
            "topics": list(self.topics),
            "months": list(self.months),
            "target_categories": list(self.target_categories),
            "target_org_codes": list(self.target_org_codes),
            "first_lesson": self.first_lesson,
        }


@dataclass(frozen=True)
class PlanBody:
    """What a plan's owner may change: its title and its classes."""

    title: str
    classes: tuple[ClassFields, ...]

    def to_json(self) -> dict[str, Any]:
        """The audited form of the body."""
        return {"title": self.title, "classes": [c.to_json() for c in self.classes]}


@dataclass(frozen=True)
class PlanFields:
    """A new plan: whose, for which year, and its body."""

    org_code: str
    year: int
    body: PlanBody


def next_state(action: str, state: str) -> str | None:
    """The state an action leads to from this state, or None when it is not allowed."""
    allowed, target = TRANSITIONS[action]
    return target if state in allowed else None


def reviews(scope_path: str | None, parent_path: str | None) -> bool:
    """Whether a caller with this scope (None: the whole tree) stands at the level that reviews
    a plan whose organization has this parent: exactly the level above, never two above (a
    county's committees are the county's to review, not the city's). A user of the whole tree
    (no organization: the system's administrators) reviews any plan, the top's own included."""
    if scope_path is None:
        return True
    return parent_path == scope_path


def is_filed(state: str | None) -> bool:
    """Filed or accepted: the organization has done its 备案 for the year."""
    return state in FILED_PLAN_STATES


def whole(
    value: object, field: str, problems: v.Problems, *, low: int, high: int, prefix: str = ""
) -> int | None:
    """A whole number (or its decimal text, from a form) within the field's range."""
    name = f"{prefix}{field}"
    if isinstance(value, str) and WHOLE.match(value.strip()):
        value = int(value.strip())
    if value is None or value == "":
        problems[name] = v.REQUIRED
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems[name] = NOT_WHOLE
        return None
    if not low <= value <= high:
        problems[name] = RANGE_MESSAGES[field]
        return None
    return value


def _hours(value: object, name: str, problems: v.Problems) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        problems[name] = v.REQUIRED if value in (None, "") else NOT_NUMBER
        return None
    try:
        hours = Decimal(str(value).strip())
    except InvalidOperation:
        problems[name] = NOT_NUMBER
        return None
    if not hours.is_finite() or hours <= 0 or hours > MAX_HOURS:
        problems[name] = HOURS_RANGE
        return None
    if hours != hours.quantize(Decimal("0.01")):
        problems[name] = HOURS_DECIMALS
        return None
    return hours


def _codes(value: object, name: str, problems: v.Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_LIST:
        problems[name] = CODES_SHAPE
        return ()
    if not all(isinstance(item, str) and v.CODE_PATTERN.match(item) for item in value):
        problems[name] = CODES_SHAPE
        return ()
    if len(set(value)) != len(value):
        problems[name] = CODE_REPEATED
        return ()
    return tuple(value)


def _months(value: object, name: str, problems: v.Problems) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in value
    ):
        problems[name] = MONTHS_SHAPE
        return ()
    if len(set(value)) != len(value):
        problems[name] = MONTH_REPEATED
        return ()
    return tuple(sorted(value))


def _categories(value: object, name: str, problems: v.Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems[name] = CODES_SHAPE
        return ()
    if any(item not in MEMBER_CATEGORIES for item in value):
        problems[name] = CATEGORY_UNKNOWN
        return ()
    return tuple(sorted(set(value), key=MEMBER_CATEGORIES.index))


def _class(raw: Mapping[str, object], prefix: str, problems: v.Problems) -> ClassFields | None:
    found = v.Problems()
    code = v.code(raw, "code", found)
    title = v.text(raw, "title", found)
    problems.update({f"{prefix}{name}": problem for name, problem in found.items()})
    before = len(problems)
    runs = whole(
        raw.get("runs_planned"), "runs_planned", problems, low=0, high=MAX_RUNS, prefix=prefix
    )
    trainees = whole(
        raw.get("trainees_planned"),
        "trainees_planned",
        problems,
        low=0,
        high=MAX_TRAINEES,
        prefix=prefix,
    )
    hours = _hours(raw.get("hours_per_run"), f"{prefix}hours_per_run", problems)
    topics = _codes(raw.get("topics"), f"{prefix}topics", problems)
    months = _months(raw.get("months"), f"{prefix}months", problems)
    categories = _categories(raw.get("target_categories"), f"{prefix}target_categories", problems)
    orgs = _codes(raw.get("target_org_codes"), f"{prefix}target_org_codes", problems)
    first_lesson = raw.get("first_lesson", False)
    if not isinstance(first_lesson, bool):
        problems[f"{prefix}first_lesson"] = NOT_YES_NO
    if (
        found
        or len(problems) > before
        or code is None
        or title is None
        or runs is None
        or trainees is None
        or hours is None
        or not isinstance(first_lesson, bool)
    ):
        return None
    return ClassFields(
        code, title, runs, trainees, hours, topics, months, categories, orgs, first_lesson
    )


def _classes(value: object, problems: v.Problems) -> tuple[ClassFields, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems["classes"] = CLASSES_SHAPE
        return ()
    if len(value) > MAX_CLASSES:
        problems["classes"] = CLASSES_TOO_MANY
        return ()
    classes: list[ClassFields] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        prefix = f"classes[{index}]."
        if not isinstance(item, dict):
            problems[f"classes[{index}]"] = CLASS_SHAPE
            continue
        parsed = _class(item, prefix, problems)
        if parsed is None:
            continue
        if parsed.code in seen:
            problems[f"{prefix}code"] = CLASS_REPEATED
            continue
        seen.add(parsed.code)
        classes.append(parsed)
    return tuple(classes)


def parse_body(raw: Mapping[str, Any]) -> tuple[PlanBody | None, v.Problems]:
    """Check a plan's title and classes (PUT replaces exactly these)."""
    problems = v.Problems()
    title = v.text(raw, "title", problems)
    classes = _classes(raw.get("classes"), problems)
    if problems or title is None:
        return None, problems
    return PlanBody(title, classes), problems


def parse_plan(raw: Mapping[str, Any]) -> tuple[PlanFields | None, v.Problems]:
    """Check a new plan: the organization, the year, the title and the classes (whether the
    organization exists and files plans, and whether the targets lie in its subtree, the
    service checks)."""
    problems = v.Problems()
    org_code = v.code(raw, "org_code", problems)
    year = whole(raw.get("year"), "year", problems, low=FIRST_YEAR, high=LAST_YEAR)
    body, body_problems = parse_body(raw)
    problems.update(body_problems)
    if problems or org_code is None or year is None or body is None:
        return None, problems
    return PlanFields(org_code, year, body), problems


def parse_comment(raw: Mapping[str, object]) -> tuple[str | None, v.Problems]:
    """A reviewer's comment: required to return a plan, optional to accept it."""
    problems = v.Problems()
    comment = v.text(raw, "comment", problems, max_len=MAX_COMMENT, optional=True)
    return comment, problems


@dataclass(frozen=True)
class ClassTally:
    """What was planned for a class and what has happened so far."""

    code: str
    title: str
    first_lesson: bool
    runs_planned: int
    runs_held: int
    trainees_planned: int
    members: int  # members of the class's target subtrees and categories, now
    trainees_reached: int  # distinct members present in the held runs

    @property
    def runs_pct(self) -> float:
        """Runs held ÷ planned, in percent."""
        return float(coverage_pct(self.runs_held, self.runs_planned))

    @property
    def trainees_pct(self) -> float:
        """Trainees reached ÷ planned, in percent."""
        return float(coverage_pct(self.trainees_reached, self.trainees_planned))

    @property
    def over_members(self) -> bool:
        """More trainees planned than there are members to train: a 虚训 warning."""
        return self.trainees_planned > self.members


@dataclass(frozen=True)
class Totals:
    """A plan's classes added up."""

    runs_planned: int
    runs_held: int
    trainees_planned: int
    trainees_reached: int


def totals(tallies: Sequence[ClassTally], trainees_reached: int) -> Totals:
    """The sums over a plan's classes; trainees reached are distinct across classes, so the
    caller counts them once."""
    return Totals(
        sum(t.runs_planned for t in tallies),
        sum(t.runs_held for t in tallies),
        sum(t.trainees_planned for t in tallies),
        trainees_reached,
    )


def without_first_lesson(tallies: Sequence[ClassTally]) -> list[str]:
    """The codes of classes that do not open with the political-theory first lesson (首课)."""
    return [t.code for t in tallies if not t.first_lesson]


def not_filed(states: Mapping[str, str | None]) -> list[str]:
    """The organizations (code → plan state, None: no plan) that have not filed (漏备案)."""
    return [code for code, state in states.items() if not is_filed(state)]
