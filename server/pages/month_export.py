"""A month's attendance rows in words: the export's headings and cells, a CSV written as the rows
are read, and a workbook written row by row (server/domain/xlsx_stream), both streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType
from zoneinfo import ZoneInfo

from server.domain.labels import FLAG_LABELS, REASON_LABELS, STATUS_LABELS
from server.domain.members import hours_number
from server.domain.xlsx_stream import XlsxStream
from server.pages.attendance_export import Cell, csv_safe
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


def workbook(title: str, heading: Sequence[str]) -> XlsxStream:
    """The month's workbook, to be written batch by batch: one sheet, a bold filled frozen
    header, the columns' widths; every text an inline string, so text that looks like a formula
    (`=…`, `+…`, `@…`) or an error (`#N/A`) stays text."""
    return XlsxStream(title, heading, tuple(COLUMNS.values()))
