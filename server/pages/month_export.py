"""A month's attendance rows in words: the export's headings and cells, a CSV written as the rows
are read, and a workbook written row by row (openpyxl's write-only mode)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from server.domain.labels import FLAG_LABELS, REASON_LABELS, STATUS_LABELS
from server.domain.members import hours_number
from server.pages.attendance_export import HEADER_FILL, Cell, csv_safe
from server.services.month_attendance import ResultRow

# The columns: heading msgid, and width in characters in the workbook.
COLUMNS = MappingProxyType(
    {
        "Member number": 14,
        "Full name": 10,
        "Organization": 24,
        "Date": 11,
        "Session": 30,
        "Assigned venue": 18,
        "Status": 8,
        "Reason": 12,
        "Verified (minutes)": 10,
        "Credit hours": 8,
        "Flags": 24,
        "Session number": 14,
    }
)


def headings(gettext: Callable[[str], str]) -> list[str]:
    """The columns' headings in the reader's language."""
    return [gettext(heading) for heading in COLUMNS]


def cells(row: ResultRow, gettext: Callable[[str], str], tz: ZoneInfo, joiner: str) -> list[Cell]:
    """One result as the export writes it: names, not codes (the session's number last, for
    finding it in the product)."""
    return [
        row.member_no,
        row.name,
        row.org_name,
        row.starts_at.astimezone(tz).strftime("%Y-%m-%d"),
        row.title,
        row.venue or "",
        gettext(STATUS_LABELS.get(row.status, row.status)),
        gettext(REASON_LABELS[row.reason]) if row.reason and row.reason in REASON_LABELS else "",
        row.verified_seconds // 60,
        hours_number(row.credit_hours),
        joiner.join(gettext(FLAG_LABELS.get(flag, flag)) for flag in row.flags),
        row.session_id,
    ]


def csv_text(lines: Iterable[Sequence[Cell]]) -> str:
    """CSV lines (CRLF), each text cell a spreadsheet would run made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([csv_safe(value) for value in line] for line in lines)
    return buffer.getvalue()


def _risky(value: Cell) -> bool:
    """Text openpyxl would store as a formula: written as a text cell instead."""
    return isinstance(value, str) and value.startswith("=")


def _text_cell(sheet: Any, value: Cell) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # text stays text: never a live formula
    return cell


def workbook_bytes(title: str, heading: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """A one-sheet workbook written row by row: bold filled header, frozen, widths set. Plain
    values go in as they are (a cell object each would triple the time); only text openpyxl
    would take for a formula gets a text cell."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    for index, width in enumerate(COLUMNS.values(), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor=HEADER_FILL)
    header = []
    for text in heading:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font, cell.fill = bold, fill
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([_text_cell(sheet, value) if _risky(value) else value for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
