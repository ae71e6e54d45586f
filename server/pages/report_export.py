"""The monthly report as tables in words: the organization's line and its children's lines, for
the page and for the XLSX export (the same numbers in both)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.domain.reports import Figures
from server.pages.attendance_export import Cell, Sheet

# The report's columns: heading msgid, and width in characters in the workbook.
REPORT_COLUMN_LABELS = MappingProxyType(
    {
        "org": "Organization code",
        "name": "Organization name",
        "month": "Month",
        "members_total": "Member count",
        "sessions_held": "Sessions held",
        "person_times": "Person-times",
        "makeup_person_times": "Of which make-up (补学)",
        "members_trained_month": "Trained this month",
        "members_trained_ytd": "Trained this year",
        "coverage_ytd_pct": "Coverage this year (%)",
        "untrained_ytd": "Untrained this year",
        "below_requirement": "Below the pro-rated requirement",
        "repeat_blocked": "Repeat training (not credited)",
        "partial_outage": "Partial because of a stream outage",
        "conflicts": "Overlapping venues",
        "runs_planned": "Runs planned",
        "runs_held": "Runs held",
    }
)
REPORT_COLUMN_WIDTHS = (16, 22, 10, 8, 10, 10, 12, 12, 14, 12, 16, 16, 16, 12, 10, 10)


@dataclass(frozen=True)
class ReportLine:
    """One organization's figures as the page's tables and the workbook show them."""

    org: str
    name: str
    figures: Figures

    def cells(self) -> list[Cell]:
        """The line in the order of REPORT_COLUMN_LABELS."""
        data = self.figures.own_json()
        values: dict[str, Cell] = {
            **{key: data[key] for key in REPORT_COLUMN_LABELS if key in data},
            "name": self.name,
            "runs_planned": data["plan_progress"]["runs_planned"],
            "runs_held": data["plan_progress"]["runs_held"],
        }
        return [values[key] for key in REPORT_COLUMN_LABELS]


def report_lines(figures: Figures, names: Mapping[str, str]) -> tuple[ReportLine, list[ReportLine]]:
    """The organization's line and one line per child organization."""
    whole = ReportLine(figures.org, names.get(figures.org, figures.org), figures)
    children = [ReportLine(c.org, names.get(c.org, c.org), c) for c in figures.children]
    return whole, children


def report_sheets(
    figures: Figures, names: Mapping[str, str], gettext: Callable[[str], str]
) -> list[Sheet]:
    """Two sheets: the organization (its subtree as a whole) and its child organizations."""
    whole, children = report_lines(figures, names)
    headings = [gettext(heading) for heading in REPORT_COLUMN_LABELS.values()]
    widths = list(REPORT_COLUMN_WIDTHS)
    return [
        Sheet(gettext("This organization"), headings, widths, [whole.cells()]),
        Sheet(gettext("Child organizations"), headings, widths, [c.cells() for c in children]),
    ]
