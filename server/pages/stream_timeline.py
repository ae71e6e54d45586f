"""The review page's stream timeline: each branch venue's spans laid out over the session
window, beside the verified minutes its finalized result stores (never recomputed here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain.stream_timeline import SHOWN_WHEN_DRAWN, TIMELINE_STATES, StreamSpan
from server.pages.attendance_export import window_seconds
from server.services.attendance_view import SessionAttendance, VenueLine
from server.services.venue_streams import StreamTimelines

BAR_WIDTH = 1000  # the bar's width in the SVG's own units; it scales with the page
MAX_LISTED = 8  # unverified spans written out per venue; the rest are counted


@dataclass(frozen=True)
class SpanBox:
    """A span as the bar draws it (x and width in BAR_WIDTH units) and as its title reads."""

    state: str
    x: str
    width: str
    starts_at: datetime
    ends_at: datetime
    length: str


@dataclass(frozen=True)
class TimelineRow:
    """One branch venue: its bar, the spans that were not verified, and its stored figure."""

    venue: VenueLine
    boxes: tuple[SpanBox, ...]
    unverified: tuple[SpanBox, ...]
    more_unverified: int
    up_minutes: int
    window_minutes: int


def duration_text(seconds: int, gettext: Callable[[str], str]) -> str:
    """A span's length as a clerk says it: 45 秒, 20 分钟, 1 分 30 秒."""
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return gettext("%(seconds)s s") % {"seconds": rest}
    if not rest:
        return gettext("%(minutes)s min") % {"minutes": minutes}
    return gettext("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": rest}


def bar_units(value: float) -> str:
    """A length in the bar's units, as short as it can be written (12.5, not 12.50)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _box(span: StreamSpan, start: int, window: int, gettext: Callable[[str], str]) -> SpanBox:
    return SpanBox(
        span.state,
        bar_units(BAR_WIDTH * (span.start - start) / window),
        bar_units(BAR_WIDTH * span.seconds / window),
        datetime.fromtimestamp(span.start, UTC),
        datetime.fromtimestamp(span.end, UTC),
        duration_text(span.seconds, gettext),
    )


def timeline_rows(
    result: SessionAttendance, timelines: StreamTimelines, gettext: Callable[[str], str]
) -> list[TimelineRow]:
    """One row per branch venue, by code."""
    start = int(result.starts_at.timestamp())
    window = window_seconds(result)
    rows = []
    for venue in sorted(result.venues, key=lambda line: line.code):
        spans = timelines.by_venue.get(venue.code)
        if venue.role != "branch" or spans is None or window <= 0:
            continue
        boxes = tuple(_box(span, start, window, gettext) for span in spans)
        unverified = tuple(box for box, span in zip(boxes, spans, strict=True) if not span.up)
        rows.append(
            TimelineRow(
                venue,
                boxes,
                unverified[:MAX_LISTED],
                max(len(unverified) - MAX_LISTED, 0),
                venue.up_seconds // 60,
                window // 60,
            )
        )
    return rows


def legend_states(rows: list[TimelineRow]) -> tuple[str, ...]:
    """The states the legend explains: always the stream's and no report; "not on air" and
    "session ended" only when a bar shows them."""
    shown = {box.state for row in rows for box in row.boxes}
    return tuple(
        state for state in TIMELINE_STATES if state not in SHOWN_WHEN_DRAWN or state in shown
    )
