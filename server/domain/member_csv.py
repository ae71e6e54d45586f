"""Reading a member CSV: header aliases and per-line checks, line by line so a file of any length
is read in batches. Pure: text lines in, checked rows and problems out."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType

from server.domain.csv_rows import NOT_UTF8_LINE
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
# The headers of the template, as a Big5 (Traditional Chinese) file would spell them.
TRADITIONAL_HEADERS = ("黨員編號", "編號", "姓名", "組織代碼", "類別", "人員類別", "卡號")
TEMPLATE_HEADERS = ("党员编号", "姓名", "组织代码", "类别", "卡号")
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
# The columns a problem may name, by the labels files are headed with (rosters add the venue).
FILE_COLUMN_LABELS = MappingProxyType({**COLUMN_LABELS, "venue": "Venue code"})
UNREADABLE_LINE = (
    "This line is not valid CSV (a value may be far too long); the lines after it were not checked."
)
HEADER_COLUMNS = (
    "The header must name the columns {expected}; missing: {missing}; unknown: {unknown}."
)


@dataclass(frozen=True)
class RowProblem:
    """A bad line (1-based; the header is line 1): message template, values, field problems with
    the values given. `columns` names the params that hold column names, shown by their labels."""

    line: int
    template: str
    params: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()

    def render(self, gettext: Callable[[str], str]) -> str:
        """The problem in words, in the caller's language: columns by their (Chinese) names."""
        params = dict(self.params)
        for name in self.columns:
            params[name] = _labels(self.params.get(name, ""), gettext)
        text = gettext(self.template).format(**params)
        details = "; ".join(
            f"{gettext(FILE_COLUMN_LABELS.get(name, name))}: {gettext(problem)}"
            + (f" (“{self.values[name]}”)" if self.values.get(name) else "")
            for name, problem in self.fields.items()
        )
        return f"{text} {details}".strip()


def _labels(names: str, gettext: Callable[[str], str]) -> str:
    """Column names as a file in the reader's language heads them: 党员编号 in Chinese (the
    template's headers), member_no in English (the API's field names)."""
    shown = []
    for name in filter(None, names.split(",")):
        label = COLUMN_LABELS.get(name)
        translated = gettext(label) if label else name
        shown.append(name if translated == label else translated)
    return ", ".join(shown) or "-"


Batch = tuple[list[tuple[int, MemberFields]], list[RowProblem]]


class MemberRows:
    """A member file read line by line: `header()` first, then `batches()` of checked rows.
    Every number and card seen is remembered, so a repeat anywhere in the file is named."""

    def __init__(self, lines: Iterable[str], encoding: str = "UTF-8") -> None:
        self._reader = csv.reader(lines)
        self._encoding = encoding
        self._columns: list[str] = []
        self._seen_numbers: dict[str, int] = {}
        self._seen_cards: dict[str, int] = {}

    def header(self) -> list[RowProblem]:
        """Read the header; the problems with it (none when the rows can be read)."""
        try:
            header = next(self._reader, None)
        except csv.Error:
            return [RowProblem(1, UNREADABLE_LINE)]
        except UnicodeDecodeError:
            return [RowProblem(1, NOT_UTF8_LINE, {"line": "1", "encoding": self._encoding})]
        if header is None:
            return [RowProblem(1, "The file is empty.")]
        if header:
            header[0] = header[0].removeprefix("\ufeff")
        columns = [HEADER_ALIASES.get(name.strip(), name.strip().lower()) for name in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        unknown = [name for name in columns if name not in CSV_COLUMNS]
        repeated = sorted({name for name in columns if columns.count(name) > 1})
        problems: list[RowProblem] = []
        if missing or unknown:
            problems.append(
                RowProblem(
                    1,
                    HEADER_COLUMNS,
                    {
                        "expected": ",".join(CSV_COLUMNS),
                        "missing": ",".join(missing),
                        "unknown": ",".join(unknown),
                    },
                    columns=("expected", "missing", "unknown"),
                )
            )
        if repeated:
            # Two columns of one name would silently lose one of them.
            problems.append(
                RowProblem(
                    1,
                    "The header names {columns} more than once.",
                    {"columns": ",".join(repeated)},
                    columns=("columns",),
                )
            )
        self._columns = columns
        return problems

    def has_number(self, member_no: str) -> bool:
        """Whether a good line so far gave this member number."""
        return member_no in self._seen_numbers

    def batches(self, size: int) -> Iterator[Batch]:
        """Checked rows with their line numbers and the problems found, about `size` lines at a
        time; a line the reader cannot read ends the file (its problem says so)."""
        rows: list[tuple[int, MemberFields]] = []
        problems: list[RowProblem] = []
        while True:
            try:
                values = next(self._reader, None)
            except csv.Error:
                # A value past the csv module's size limit, say; the reader cannot go on.
                problems.append(RowProblem(self._reader.line_num, UNREADABLE_LINE))
                break
            except UnicodeDecodeError:
                line = self._reader.line_num + 1
                params = {"line": str(line), "encoding": self._encoding}
                problems.append(RowProblem(line, NOT_UTF8_LINE, params))
                break
            if values is None:
                break
            self._check(self._reader.line_num, values, rows, problems)
            if len(rows) + len(problems) >= size:
                yield rows, problems
                rows, problems = [], []
        yield rows, problems

    def _check(
        self,
        line: int,
        values: list[str],
        rows: list[tuple[int, MemberFields]],
        problems: list[RowProblem],
    ) -> None:
        columns = self._columns
        if not any(value.strip() for value in values):
            return
        if len(values) != len(columns):
            problems.append(
                RowProblem(
                    line,
                    "Expected {expected} values, found {found}.",
                    {"expected": str(len(columns)), "found": str(len(values))},
                )
            )
            return
        raw = dict(zip(columns, values, strict=True))
        category = raw.get("category", "").strip()
        raw["category"] = CATEGORY_ALIASES.get(category, category)
        fields, found = parse_member(raw)
        if fields is None:
            given = {name: raw.get(name, "").strip()[:40] for name in found}
            given["category"] = category[:40]
            shown = {name: given[name] for name in found}
            problems.append(
                RowProblem(line, "Some values are wrong:", fields=dict(found), values=shown)
            )
            return
        seen = self._seen_numbers.get(fields.member_no)
        if seen is not None:
            problems.append(
                RowProblem(
                    line,
                    "Member number {value} repeats line {other}.",
                    {"value": fields.member_no, "other": str(seen)},
                )
            )
            return
        card = fields.card_code
        if card and card in self._seen_cards:
            problems.append(
                RowProblem(
                    line,
                    "Card {value} repeats line {other}.",
                    {"value": card, "other": str(self._seen_cards[card])},
                )
            )
            return
        self._seen_numbers[fields.member_no] = line
        if card:
            self._seen_cards[card] = line
        rows.append((line, fields))


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM; spreadsheets saved as GB18030/GBK are accepted too."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def template_csv() -> bytes:
    """The import template: the Chinese headers, UTF-8 with a BOM so Excel opens it as UTF-8."""
    return ("\ufeff" + ",".join(TEMPLATE_HEADERS) + "\r\n").encode("utf-8")
