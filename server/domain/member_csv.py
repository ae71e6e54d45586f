"""Reading a member CSV: encoding, header aliases and per-line checks. Pure: bytes in, rows out."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from server.domain.labels import COLUMN_LABELS
from server.domain.members import CSV_COLUMNS, MemberFields, parse_member

HEADER_ALIASES = MappingProxyType(
    {
        "党员编号": "member_no",
        "编号": "member_no",
        "姓名": "name",
        "组织代码": "org_code",
        "所在组织代码": "org_code",
        "类别": "category",
        "人员类别": "category",
        "卡号": "card_code",
        "证卡号": "card_code",
    }
)
CATEGORY_ALIASES = MappingProxyType(
    {
        "普通党员": "ordinary",
        "党员": "ordinary",
        "书记": "secretary",
        "党组织书记": "secretary",
        "支部书记": "secretary",
        "委员": "committee",
        "班子成员": "committee",
    }
)
REQUIRED_COLUMNS = ("member_no", "name", "org_code", "category")
UNREADABLE_LINE = (
    "This line is not valid CSV (a value may be far too long); the lines after it were not checked."
)


@dataclass(frozen=True)
class RowProblem:
    """A bad line (1-based; the header is line 1): message template, values, field problems."""

    line: int
    template: str
    params: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def render(self, gettext: Callable[[str], str]) -> str:
        """The problem in words, in the caller's language."""
        text = gettext(self.template).format(**self.params)
        details = "; ".join(
            f"{gettext(COLUMN_LABELS.get(name, name))}: {gettext(problem)}"
            for name, problem in self.fields.items()
        )
        return f"{text} {details}".strip()


@dataclass(frozen=True)
class ParsedCsv:
    """The good rows with their line numbers, and every problem found."""

    rows: list[tuple[int, MemberFields]]
    problems: list[RowProblem]


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM; spreadsheets saved as GB18030/GBK are accepted too."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def parse_members_csv(data: bytes) -> ParsedCsv:
    """Check the header and every line; nothing is dropped silently."""
    try:
        text = decode(data)
    except UnicodeDecodeError:
        return ParsedCsv([], [RowProblem(1, "The file is not UTF-8 (or GB18030) text.")])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error:
        return ParsedCsv([], [RowProblem(1, UNREADABLE_LINE)])
    if header is None:
        return ParsedCsv([], [RowProblem(1, "The file is empty.")])
    columns = [HEADER_ALIASES.get(name.strip(), name.strip().lower()) for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    header_problems: list[RowProblem] = []
    if missing or unknown:
        header_problems.append(
            RowProblem(
                1,
                "The header must name the columns {expected}; "
                "missing: {missing}; unknown: {unknown}.",
                {
                    "expected": ", ".join(CSV_COLUMNS),
                    "missing": ", ".join(missing) or "-",
                    "unknown": ", ".join(unknown) or "-",
                },
            )
        )
    if repeated:
        # Two columns of one name would silently lose one of them.
        header_problems.append(
            RowProblem(
                1, "The header names {columns} more than once.", {"columns": ", ".join(repeated)}
            )
        )
    if header_problems:
        return ParsedCsv([], header_problems)
    rows: list[tuple[int, MemberFields]] = []
    problems: list[RowProblem] = []
    seen_numbers: dict[str, int] = {}
    seen_cards: dict[str, int] = {}
    while True:
        try:
            values = next(reader, None)
        except csv.Error:
            # A value past the csv module's size limit, say; the reader cannot go on.
            problems.append(RowProblem(reader.line_num, UNREADABLE_LINE))
            break
        if values is None:
            break
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            problems.append(
                RowProblem(
                    line,
                    "Expected {expected} values, found {found}.",
                    {"expected": str(len(columns)), "found": str(len(values))},
                )
            )
            continue
        raw = dict(zip(columns, values, strict=True))
        category = raw.get("category", "").strip()
        raw["category"] = CATEGORY_ALIASES.get(category, category)
        fields, found = parse_member(raw)
        if fields is None:
            problems.append(RowProblem(line, "Some values are wrong:", fields=dict(found)))
            continue
        if fields.member_no in seen_numbers:
            problems.append(
                RowProblem(
                    line,
                    "Member number {value} repeats line {other}.",
                    {"value": fields.member_no, "other": str(seen_numbers[fields.member_no])},
                )
            )
            continue
        if fields.card_code and fields.card_code in seen_cards:
            problems.append(
                RowProblem(
                    line,
                    "Card {value} repeats line {other}.",
                    {"value": fields.card_code, "other": str(seen_cards[fields.card_code])},
                )
            )
            continue
        seen_numbers[fields.member_no] = line
        if fields.card_code:
            seen_cards[fields.card_code] = line
        rows.append((line, fields))
    return ParsedCsv(rows, problems)
