"""A session's attendance as tables in words, and as CSV or XLSX files of those tables."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from server.domain.labels import (
    FLAG_LABELS,
    REASON_LABELS,
    STATUS_LABELS,
    VENUE_ROLE_LABELS,
)
from server.domain.members import hours_number as number
from server.domain.xlsx_stream import HEADER_FILL
from server.services.attendance_view import MemberLine, SessionAttendance

Cell = str | int | float | None
UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
BOM = "\ufeff"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The member table's columns: heading msgid, and width in characters in the workbook.
MEMBER_COLUMN_LABELS = MappingProxyType(
    {
        "member_no": "Member number",
        "name": "Full name",
        "org_name": "Organization",
        "assigned_venue": "Assigned venue",
        "venues": "Venues checked in",
        "status": "Status",
        "reason": "Reason",
        "flags": "Flags",
        "presence": "Presence (minutes)",
        "verified": "Verified (minutes)",
        "credit_hours": "Credit hours",
    }
)
MEMBER_COLUMN_WIDTHS = (14, 10, 14, 16, 22, 10, 12, 26, 12, 12, 10)
VENUE_COLUMN_LABELS = MappingProxyType(
    {
        "code": "Venue code",
        "name": "Venue",
        "role": "Role",
        "expected": "Expected",
        "checked_in": "Checked in",
        "up_minutes": "Stream up (minutes)",
        "up_percent": "Stream up (% of the window)",
    }
)
VENUE_COLUMN_WIDTHS = (16, 26, 10, 8, 8, 16, 18)


@dataclass(frozen=True)
class Sheet:
    """A table with translated headings, its column widths, and its rows of plain values."""

    title: str
    headings: list[str]
    widths: list[int]
    rows: list[list[Cell]]


def up_percent(up_seconds: int, window_seconds: int) -> float:
    """A venue's stream up-time as a percentage of the session window, one decimal."""
    return round(100 * up_seconds / window_seconds, 1) if window_seconds > 0 else 0.0


def window_seconds(result: SessionAttendance) -> int:
    """The length of the session window in whole seconds."""
    return int((result.ends_at - result.starts_at).total_seconds())


def member_sheet(
    members: Sequence[MemberLine],
    gettext: Callable[[str], str],
    joiner: str,
    venue_names: Mapping[str, str],
) -> Sheet:
    """The per-member table, in words: organizations and venues by name, not code."""

    def words(codes: Sequence[str], labels: Mapping[str, str]) -> str:
        return joiner.join(gettext(labels[code]) if code in labels else code for code in codes)

    rows: list[list[Cell]] = [
        [
            line.member_no,
            line.name,
            line.org_name,
            venue_names.get(line.assigned_venue, line.assigned_venue)
            if line.assigned_venue
            else "",
            joiner.join(venue_names.get(code, code) for code in line.venues),
            gettext(STATUS_LABELS.get(line.status, line.status)),
            gettext(REASON_LABELS[line.reason])
            if line.reason is not None and line.reason in REASON_LABELS
            else "",
            words(line.flags, FLAG_LABELS),
            line.presence_seconds // 60,
            line.verified_seconds // 60,
            number(line.credit_hours),
        ]
        for line in members
    ]
    return Sheet(
        gettext("Members"),
        [gettext(heading) for heading in MEMBER_COLUMN_LABELS.values()],
        list(MEMBER_COLUMN_WIDTHS),
        rows,
    )


def venue_sheet(result: SessionAttendance, gettext: Callable[[str], str]) -> Sheet:
    """The per-venue table, in words."""
    window = window_seconds(result)
    rows: list[list[Cell]] = [
        [
            venue.code,
            venue.name,
            gettext(VENUE_ROLE_LABELS.get(venue.role, venue.role)),
            venue.expected,
            venue.checked_in,
            venue.up_seconds // 60,
            up_percent(venue.up_seconds, window),
        ]
        for venue in result.venues
    ]
    return Sheet(
        gettext("Venues"),
        [gettext(heading) for heading in VENUE_COLUMN_LABELS.values()],
        list(VENUE_COLUMN_WIDTHS),
        rows,
    )


def csv_bytes(sheet: Sheet) -> bytes:
    """UTF-8 with a byte-order mark and CRLF lines, which Excel in China opens correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(sheet.headings)
    writer.writerows([csv_safe(value) for value in row] for row in sheet.rows)
    return (BOM + buffer.getvalue()).encode("utf-8")


def csv_safe(value: Cell) -> Cell:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """A workbook with one sheet per table: bold frozen header, filters, sensible widths."""
    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        page = book.create_sheet(_sheet_title(sheet.title))
        lines: list[Sequence[Cell]] = [sheet.headings, *sheet.rows]
        for row_number, values in enumerate(lines, start=1):
            for column, value in enumerate(values, start=1):
                _put(page.cell(row=row_number, column=column), value)
        for cell in page[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
            cell.alignment = Alignment(vertical="center", wrap_text=True)
        for index, width in enumerate(sheet.widths, start=1):
            page.column_dimensions[get_column_letter(index)].width = width
        page.freeze_panes = "A2"
        if sheet.rows:
            page.auto_filter.ref = page.dimensions
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _put(cell: Any, value: Cell) -> None:
    """Write a value; text is always a string cell (formula injection): openpyxl would make
    text starting with "=" a live formula, and "#N/A" an error."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def _sheet_title(title: str) -> str:
    return UNSAFE_IN_NAME.sub(" ", title).replace("[", "(").replace("]", ")")[:31] or "Sheet"


def content_disposition(ascii_name: str, full_name: str) -> str:
    """An attachment with an ASCII fallback name and the full (Chinese) name in RFC 5987 form."""
    safe = UNSAFE_IN_NAME.sub("_", full_name).strip() or ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"
