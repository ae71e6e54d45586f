"""Reading a roster CSV (member_no, venue): pure, bytes in, roster lines out."""

from __future__ import annotations

import csv
import io
from types import MappingProxyType

from server.domain.member_csv import RowProblem, decode
from server.domain.sessions import RosterLine
from server.domain.validation import CODE_PATTERN

HEADER_ALIASES = MappingProxyType(
    {
        "党员编号": "member_no",
        "编号": "member_no",
        "会场": "venue",
        "会场代码": "venue",
        "member_no": "member_no",
        "venue": "venue",
    }
)


def parse_roster_csv(data: bytes) -> tuple[list[RosterLine], list[RowProblem]]:
    """Roster lines from a file with the columns member_no and venue (Chinese names too)."""
    try:
        text = decode(data)
    except UnicodeDecodeError:
        return [], [RowProblem(1, "The file is not UTF-8 (or GB18030) text.")]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [
        HEADER_ALIASES.get(name.strip().lower(), HEADER_ALIASES.get(name.strip(), ""))
        for name in next(reader, [])
    ]
    if "member_no" not in header or "venue" not in header:
        return [], [RowProblem(1, "The header must name the columns member_no and venue.")]
    number_at, venue_at = header.index("member_no"), header.index("venue")
    lines: list[RosterLine] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            problems.append(
                RowProblem(
                    line,
                    "Expected {expected} values, found {found}.",
                    {"expected": str(len(header)), "found": str(len(values))},
                )
            )
            continue
        number, venue = values[number_at].strip(), values[venue_at].strip()
        if not CODE_PATTERN.match(number) or not CODE_PATTERN.match(venue):
            problems.append(RowProblem(line, "Member number and venue code are required."))
        elif number in seen:
            problems.append(
                RowProblem(
                    line,
                    "Member number {value} repeats line {other}.",
                    {"value": number, "other": str(seen[number])},
                )
            )
        else:
            seen[number] = line
            lines.append(RosterLine(number, venue))
    return lines, problems
