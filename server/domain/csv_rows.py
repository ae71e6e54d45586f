"""Which text encoding an uploaded CSV file is in, judged from its first bytes; and the hint to
give when it is one we do not read (UTF-16 from "Unicode text", Big5, bytes of no encoding).
Pure: bytes in, a codec name or a problem out."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

HEAD_BYTES = 64 * 1024
# Each message ends with what to do: Excel and WPS both offer "CSV UTF-8" under Save As.
UTF16_FILE = (
    'The file is UTF-16 text (Excel\'s "Unicode text"), not UTF-8: save it as '
    '"CSV UTF-8 (comma delimited)" and upload it again.'
)
BIG5_FILE = (
    "The file looks like Big5 (Traditional Chinese) text, not UTF-8: save it as "
    '"CSV UTF-8 (comma delimited)" and upload it again.'
)
NOT_UTF8_FILE = (
    "The file is not UTF-8 text (nor GB18030): save it as "
    '"CSV UTF-8 (comma delimited)" and upload it again.'
)
NOT_UTF8_LINE = (
    "Line {line} has bytes that are not {encoding} text, so the lines after it were not read: "
    'save the file as "CSV UTF-8 (comma delimited)" and upload it again.'
)
UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class EncodingGuess:
    """A codec to read the file with, or why the file cannot be read (a message to show)."""

    codec: str | None
    problem: str | None = None


def _decodes(head: bytes, codec: str) -> bool:
    """Whether the bytes are the start of text in the codec (a cut-off last character is fine)."""
    try:
        codecs.getincrementaldecoder(codec)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def guess_encoding(head: bytes) -> EncodingGuess:
    """UTF-8 (with or without BOM) first; GB18030 (which includes GBK) for spreadsheets saved in
    the Chinese ANSI code page; UTF-16/32 and zero bytes are named, never guessed at."""
    if head.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig")
    if head.startswith(UTF16_BOMS) or b"\x00" in head:
        return EncodingGuess(None, UTF16_FILE)
    if _decodes(head, "utf-8"):
        return EncodingGuess("utf-8")
    if _decodes(head, "gb18030"):
        return EncodingGuess("gb18030")
    return EncodingGuess(None, NOT_UTF8_FILE)


def big5_header(head: bytes, known: Iterable[str]) -> bool:
    """Whether the first line, read as Big5, names one of the known column headers: GB18030 reads
    any Big5 bytes without complaint, but as nonsense, so only the header can tell them apart."""
    first = head.split(b"\n", 1)[0]
    try:
        text = first.decode("big5")
    except UnicodeDecodeError:
        return False
    names = {name.strip().strip('"') for name in text.split(",")}
    return any(name in names for name in known)


@contextmanager
def text_lines(file: IO[bytes], codec: str) -> Iterator[io.TextIOWrapper]:
    """The file's text from its start, decoded as it is read; the file itself stays open (the
    caller may read it again)."""
    file.seek(0)
    text = io.TextIOWrapper(file, encoding=codec, newline="")
    try:
        yield text
    finally:
        text.detach()
