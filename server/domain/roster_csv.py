"""Reading a roster CSV (member_no, venue) line by line, so a file of 200,000 lines is decoded
and checked in one pass without being held whole: a binary file object in, roster lines and
the problems (line, column, value) out. No I/O of its own: the caller owns the file."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO

from server.domain.csv_rows import (
    BIG5_FILE,
    HEAD_BYTES,
    NOT_UTF8_LINE,
    big5_header,
    guess_encoding,
    text_lines,
)
from server.domain.member_csv import UNREADABLE_LINE, RowProblem
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
# The headers as a Big5 (Traditional Chinese) file would spell them.
TRADITIONAL_HEADERS = ("黨員編號", "編號", "會場", "會場代碼")
HEADER_COLUMNS = "The header must name the columns member_no and venue."
MAX_PROBLEMS = 1000  # listed; `count` says how many there were in all


@dataclass
class RosterRead:
    """What a roster file held: its lines, the first MAX_PROBLEMS problems and their count."""

    lines: list[RosterLine] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    count: int = 0

    def add(self, problem: RowProblem) -> None:
        """Count a problem; keep it when fewer than MAX_PROBLEMS are kept."""
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def read_roster_file(file: IO[bytes], venues: Collection[str] | None = None) -> RosterRead:
    """A roster file of any length: UTF-8 (BOM or not) or GB18030; UTF-16 and Big5 are named
    with what to do, never guessed at. The file is read from its start. With `venues` (a
    session's), a line at any other venue is a problem of that line."""
    file.seek(0)
    head = file.read(HEAD_BYTES)
    guess = guess_encoding(head)
    read = RosterRead()
    if guess.codec is None:
        read.add(RowProblem(1, guess.problem or ""))
        return read
    encoding = "GB18030" if guess.codec == "gb18030" else "UTF-8"
    with text_lines(file, guess.codec) as text:
        _read_lines(text, encoding, read, venues)
    header_wrong = bool(read.problems) and read.problems[0].template == HEADER_COLUMNS
    if header_wrong and big5_header(head, TRADITIONAL_HEADERS):
        read.problems[0] = RowProblem(1, BIG5_FILE)
    return read


def parse_roster_csv(data: bytes) -> RosterRead:
    """A roster file already in memory: see read_roster_file."""
    return read_roster_file(io.BytesIO(data))


def _read_lines(
    text: Iterable[str], encoding: str, read: RosterRead, venues: Collection[str] | None
) -> None:
    reader = csv.reader(text)
    try:
        first = next(reader, [])
    except (csv.Error, UnicodeDecodeError):
        read.add(RowProblem(1, UNREADABLE_LINE))
        return
    if first:
        first[0] = first[0].removeprefix("\ufeff")
    header = [
        HEADER_ALIASES.get(name.strip().lower(), HEADER_ALIASES.get(name.strip(), ""))
        for name in first
    ]
    if "member_no" not in header or "venue" not in header:
        read.add(RowProblem(1, HEADER_COLUMNS))
        return
    number_at, venue_at = header.index("member_no"), header.index("venue")
    seen: dict[str, int] = {}
    while True:
        try:
            values = next(reader, None)
        except csv.Error:  # a value past the csv module's size limit: the reader cannot go on
            read.add(RowProblem(reader.line_num, UNREADABLE_LINE))
            return
        except UnicodeDecodeError:
            line = reader.line_num + 1
            read.add(RowProblem(line, NOT_UTF8_LINE, {"line": str(line), "encoding": encoding}))
            return
        if values is None:
            return
        if any(value.strip() for value in values):
            shape = (len(header), number_at, venue_at)
            _check(reader.line_num, values, shape, seen, read, venues)


def _check(
    line: int,
    values: list[str],
    shape: tuple[int, int, int],
    seen: dict[str, int],
    read: RosterRead,
    venues: Collection[str] | None,
) -> None:
    width, number_at, venue_at = shape
    if len(values) != width:
        params = {"expected": str(width), "found": str(len(values))}
        read.add(RowProblem(line, "Expected {expected} values, found {found}.", params))
        return
    number, venue = values[number_at].strip(), values[venue_at].strip()
    wrong = {}
    if not CODE_PATTERN.match(number):
        wrong["member_no"] = "is required" if not number else "is not a member number"
    if not CODE_PATTERN.match(venue):
        wrong["venue"] = "is required" if not venue else "is not a venue code"
    elif venues is not None and venue not in venues:
        wrong["venue"] = "is not a venue of this session"
    if wrong:
        given = {"member_no": number[:40], "venue": venue[:40]}
        shown = {name: given[name] for name in wrong}
        read.add(RowProblem(line, "Some values are wrong:", fields=wrong, values=shown))
    elif number in seen:
        params = {"value": number, "other": str(seen[number])}
        read.add(RowProblem(line, "Member number {value} repeats line {other}.", params))
    else:
        seen[number] = line
        read.lines.append(RosterLine(number, venue))
