"""Parsing and shaping times: ISO 8601 in, aware UTC out, whole seconds where the rules say so."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR

YEAR_PATTERN = re.compile(r"^[0-9]{4}$")


def year_of(moment: datetime, tz: ZoneInfo) -> int:
    """The calendar year of a moment in the local time zone."""
    return moment.astimezone(tz).year


def parse_year(raw: str) -> int | None:
    """A year written as four digits within FIRST_YEAR..LAST_YEAR, else None."""
    if not YEAR_PATTERN.match(raw):
        return None
    year = int(raw)
    return year if FIRST_YEAR <= year <= LAST_YEAR else None


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 time with an offset (or Z), as aware UTC; None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC time
        return None


def whole_seconds(value: datetime) -> datetime:
    """Truncate to the whole second."""
    return value.replace(microsecond=0)


def epoch(value: datetime) -> int:
    """Whole seconds since the epoch."""
    return int(value.timestamp())
