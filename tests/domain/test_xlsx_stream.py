"""The streamed workbook (server/domain/xlsx_stream) is a file openpyxl reads back with the values
written: text as string cells whatever it looks like, numbers as numbers, empty cells empty,
characters XML cannot carry dropped, the header bold on its fill, frozen, columns as wide as
asked; and a large sheet leaves in pieces as its batches are written, not at the end."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from server.domain.xlsx_stream import (
    HEADER_FILL,
    MAX_TEXT,
    Value,
    XlsxStream,
    column_letter,
    sheet_title,
    xlsx_chunks,
)

FORMULA_LIKE = ('=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "-2+3", "=1", "#N/A", "#REF!")
ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _book(rows: Sequence[Sequence[Value]], heading: Sequence[str] = ("a", "b")) -> bytes:
    return b"".join(xlsx_chunks("Sheet", heading, [rows]))


def _values(body: bytes) -> list[list[Value]]:
    sheet = load_workbook(io.BytesIO(body)).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_values_come_back_as_written() -> None:
    rows: list[list[Value]] = [
        ["党员编号", "滁州市第3村党支部", "😀 emoji", "e\u0301 combining", "ok"],
        [0, -7, 1.5, 123456789012, 2.5e-7],
        ["a & b < c > d \"q\" 's'", "  padded  ", "two\nlines", "cr\r\nlf", "tab\tin"],
        [None, "", "middle", None, ""],
        [True, False, 3, None, "last"],
    ]
    got = _values(_book(rows, ["h1", "h2", "h3", "h4", "h5"]))
    assert got[0] == ["h1", "h2", "h3", "h4", "h5"]
    assert got[1:] == [[None if value == "" else value for value in row] for row in rows]
    assert isinstance(got[2][0], int) and isinstance(got[2][2], float)


def test_text_that_looks_like_a_formula_or_an_error_stays_text() -> None:
    body = _book([list(FORMULA_LIKE)], [str(n) for n in range(len(FORMULA_LIKE))])
    sheet = load_workbook(io.BytesIO(body)).active
    cells = sheet[2]
    assert [(cell.value, cell.data_type) for cell in cells] == [
        (text, "s") for text in FORMULA_LIKE
    ]


def test_characters_xml_cannot_carry_are_dropped_and_long_text_is_cut() -> None:
    rows: list[list[Value]] = [
        ["bell\x07 nul\x00 esc\x1b", "\ud800lone\udfff", "\ufffe\uffffend", "x" * (MAX_TEXT + 5)],
    ]
    got = _values(_book(rows, ["a", "b", "c", "d"]))
    assert got[1] == ["bell nul esc", "lone", "end", "x" * MAX_TEXT]


def test_text_excel_would_read_as_an_escape_keeps_its_underscore() -> None:
    """Excel reads `_x0041_` in a string as "A"; the file says `_x005F_x0041_`, which Excel
    shows as the text written (openpyxl does not decode these escapes, so the XML is checked)."""
    body = _book([["name_x0041_here", "_x_ plain"]])
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        xml = package.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "name_x005F_x0041_here" in xml and "<t>_x_ plain</t>" in xml


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40).filter(lambda t: "_x" not in t), min_size=1, max_size=6))
def test_any_text_comes_back_less_what_xml_cannot_carry(texts: list[str]) -> None:
    got = _values(_book([texts], [f"h{i}" for i in range(len(texts))]))
    expected = [ILLEGAL.sub("", text) or None for text in texts]
    assert (got[1] if len(got) > 1 else [None] * len(texts)) == expected


def test_the_package_and_the_header() -> None:
    body = b"".join(
        xlsx_chunks("出勤情况: [11/2026]?", ["党员编号", "姓名"], [[["A", 1]]], widths=(14, 10.5))
    )
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        assert package.testzip() is None
        assert package.namelist()[0] == "[Content_Types].xml"
        assert {info.compress_type for info in package.infolist()} == {zipfile.ZIP_DEFLATED}
    book = load_workbook(io.BytesIO(body))
    sheet = book.active
    assert book.sheetnames == ["出勤情况   11 2026"]
    assert sheet.freeze_panes == "A2"
    assert (sheet.column_dimensions["A"].width, sheet.column_dimensions["B"].width) == (14, 10.5)
    header = sheet[1]
    assert [cell.value for cell in header] == ["党员编号", "姓名"]
    assert all(cell.font.b and cell.fill.fgColor.rgb == f"FF{HEADER_FILL}" for cell in header)
    body_cell = sheet["A2"]
    assert not body_cell.font.b and body_cell.fill.fill_type is None


def test_a_large_sheet_leaves_in_pieces_as_it_is_written() -> None:
    batches, per_batch = 60, 2_000
    consumed: list[int] = []

    def batches_of_rows() -> Iterator[list[list[Value]]]:
        for batch in range(batches):
            consumed.append(batch)
            yield [
                [f"341100{n:06d}", f"党员{n}", n, n / 4, "=SUM(A1)" if n % 1000 == 0 else ""]
                for n in range(batch * per_batch, (batch + 1) * per_batch)
            ]

    chunks, seen_when = [], []
    for chunk in xlsx_chunks("Big", ["no", "name", "n", "quarter", "text"], batches_of_rows()):
        chunks.append(chunk)
        seen_when.append(len(consumed))
    # Bytes left after the first batch and all along, each piece a small part of the whole.
    assert seen_when[0] == 0 and seen_when[1] <= 2 and len(chunks) > batches // 2
    total = sum(map(len, chunks))
    assert max(map(len, chunks)) < total / 10
    sheet = load_workbook(io.BytesIO(b"".join(chunks)), read_only=True).active
    count = 0
    for number, row in enumerate(sheet.iter_rows(min_row=2, values_only=True)):
        count += 1
        if number % 9_973 == 0:
            text = "=SUM(A1)" if number % 1000 == 0 else None
            padded = [*row, None][:5]  # no <dimension>: read-only rows end at their last cell
            assert padded == [f"341100{number:06d}", f"党员{number}", number, number / 4, text]
    assert count == batches * per_batch


def test_rows_wider_than_the_heading_and_columns_past_z() -> None:
    got = _values(_book([list(range(30))], ["only"]))
    assert got[1] == list(range(30))
    assert [column_letter(n) for n in (1, 26, 27, 52, 703, 16_384)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "AAA",
        "XFD",
    ]


def test_a_writer_closed_early_leaves_nothing_open() -> None:
    book = XlsxStream("Sheet", ["a"])
    assert book.start()
    book.rows([["x"]])
    book.close()
    book.close()
    assert sheet_title("") == "Sheet1" and sheet_title("a" * 40) == "a" * 31
