"""The plan form: what was typed, turned into parse_plan's mapping, problems by form field.

The rules stay in server/domain/plans.py; this module only translates between the form's fields
(one row of text boxes per class, lists typed with spaces or commas, a box per member category)
and the JSON-like mapping the API accepts, and maps each problem back to the box it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from server.domain.plans import MAX_CLASSES, ClassFields, PlanBody
from server.domain.vocabulary import MEMBER_CATEGORIES
from server.pages.forms import FormProblem
from server.pages.render import hours_text

MIN_ROWS = 5
SPARE_ROWS = 2
SEPARATORS = re.compile(r"[\s,，;；、]+")
# the API's name of a class field → the form's
FORM_NAMES = MappingProxyType(
    {
        "code": "code",
        "title": "title",
        "runs_planned": "runs",
        "trainees_planned": "trainees",
        "hours_per_run": "hours",
        "topics": "topics",
        "months": "months",
        "target_categories": "cats",
        "target_org_codes": "targets",
        "first_lesson": "first",
    }
)
TEXT_BOXES = ("code", "title", "runs", "trainees", "hours", "topics", "months", "targets")
CLASS_KEY = re.compile(r"^classes\[(\d+)\](?:\.(\w+))?$")


@dataclass(frozen=True)
class ClassRow:
    """One class row of the form, as text."""

    values: dict[str, str] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    first_lesson: bool = False

    def get(self, name: str) -> str:
        """A text box's value (for the template)."""
        return self.values.get(name, "")

    @property
    def blank(self) -> bool:
        """Nothing typed in the row: it is left out."""
        return not any(value.strip() for value in self.values.values())


@dataclass(frozen=True)
class PlanForm:
    """The plan form's values as text, the way the page shows them."""

    values: dict[str, str]
    rows: tuple[ClassRow, ...]

    def get(self, name: str, default: str = "") -> str:
        """A text value (for the template)."""
        return self.values.get(name, default)

    @classmethod
    def blank(cls, org_code: str, year: int) -> PlanForm:
        """A new plan's form: the caller's organization and this year, empty class rows."""
        return cls({"org_code": org_code, "year": str(year)}, _padded(()))

    @classmethod
    def of(cls, body: PlanBody) -> PlanForm:
        """The form filled in from a stored plan."""
        rows = tuple(_row_of(item) for item in body.classes)
        return cls({"title": body.title}, _padded(rows))

    @classmethod
    def from_post(cls, form: Mapping[str, str]) -> PlanForm:
        """What was submitted: the plan's boxes, and every row the page had."""
        count = (
            int(form["rows"])
            if form.get("rows", "").isascii() and form.get("rows", "").isdigit()
            else MIN_ROWS
        )
        rows = tuple(
            ClassRow(
                {name: form.get(f"c{index}_{name}", "") for name in TEXT_BOXES},
                frozenset(c for c in MEMBER_CATEGORIES if form.get(f"c{index}_cat_{c}")),
                bool(form.get(f"c{index}_first")),
            )
            for index in range(min(count, MAX_CLASSES + SPARE_ROWS))
        )
        values = {name: form.get(name, "") for name in ("org_code", "year", "title")}
        return cls(values, rows)

    def to_raw(self) -> tuple[dict[str, Any], list[int]]:
        """The mapping parse_plan checks, and the form row of each class in it."""
        filled = [index for index, row in enumerate(self.rows) if not row.blank]
        classes = [_raw_class(self.rows[index]) for index in filled]
        return {**self.values, "classes": classes}, filled


def _padded(rows: tuple[ClassRow, ...]) -> tuple[ClassRow, ...]:
    spare = max(MIN_ROWS - len(rows), SPARE_ROWS)
    return rows + tuple(ClassRow() for _ in range(spare))


def _row_of(item: ClassFields) -> ClassRow:
    return ClassRow(
        {
            "code": item.code,
            "title": item.title,
            "runs": str(item.runs_planned),
            "trainees": str(item.trainees_planned),
            "hours": hours_text(item.hours_per_run),
            "topics": " ".join(item.topics),
            "months": " ".join(str(month) for month in item.months),
            "targets": " ".join(item.target_org_codes),
        },
        frozenset(item.target_categories),
        item.first_lesson,
    )


def _words(text: str) -> list[str]:
    return [word for word in SEPARATORS.split(text.strip()) if word]


def _raw_class(row: ClassRow) -> dict[str, Any]:
    months = [
        int(word) if word.isascii() and word.isdigit() else word
        for word in _words(row.get("months"))
    ]
    return {
        "code": row.get("code"),
        "title": row.get("title"),
        "runs_planned": row.get("runs"),
        "trainees_planned": row.get("trainees"),
        "hours_per_run": row.get("hours"),
        "topics": _words(row.get("topics")),
        "months": months,
        "target_categories": sorted(row.categories),
        "target_org_codes": _words(row.get("targets")),
        "first_lesson": row.first_lesson,
    }


def form_field(key: str, rows: list[int]) -> str:
    """The form box a problem of the mapping belongs to: classes[1].runs_planned → c3_runs
    when the second class was typed in the fourth row."""
    match = CLASS_KEY.match(key)
    if match is None:
        return key
    index, name = int(match.group(1)), match.group(2) or "code"
    row = rows[index] if index < len(rows) else index
    return f"c{row}_{FORM_NAMES.get(name, name)}"


def on_form(problem: FormProblem, rows: list[int]) -> FormProblem:
    """A problem of the mapping, its fields renamed to the form's boxes."""
    fields = {form_field(key, rows): text for key, text in problem.fields.items()}
    return replace(problem, fields=fields)
