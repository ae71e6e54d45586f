"""The committee cabinet (一党委一专柜) as a table in words, for its CSV and XLSX files."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from server.domain.archive import CABINET_STATE_LABELS
from server.domain.labels import CATEGORY_LABELS
from server.domain.members import hours_number as number
from server.pages.attendance_export import Cell, Sheet
from server.services.archive import Cabinet

# The cabinet's columns: heading msgid, and width in characters in the workbook.
CABINET_COLUMN_LABELS = MappingProxyType(
    {
        "member_no": "Member number",
        "name": "Full name",
        "org_code": "Organization code",
        "org_name": "Organization name",
        "category": "Category",
        "required_hours": "Required hours",
        "earned_hours": "Hours earned",
        "completeness_pct": "Completeness (%)",
        "state": "Completion state",
    }
)
CABINET_COLUMN_WIDTHS = (14, 10, 14, 22, 16, 10, 10, 12, 10)


def cabinet_sheet(found: Cabinet, gettext: Callable[[str], str]) -> Sheet:
    """One row per member, in the cabinet's order."""
    rows: list[list[Cell]] = [
        [
            line.member_no,
            line.name,
            line.org_code,
            line.org_name,
            gettext(CATEGORY_LABELS.get(line.category, line.category)),
            number(line.required_hours),
            number(line.earned_hours),
            float(line.completeness_pct),
            gettext(CABINET_STATE_LABELS[line.state]),
        ]
        for line in found.lines
    ]
    return Sheet(
        f"{found.org_name} {found.year}",
        [gettext(heading) for heading in CABINET_COLUMN_LABELS.values()],
        list(CABINET_COLUMN_WIDTHS),
        rows,
    )
