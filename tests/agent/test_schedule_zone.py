"""The time zone the staff page shows every time in comes with the server's schedule, is kept on
disk with it (a restart offline keeps it), and is Asia/Shanghai when a server sends none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from venue_agent.outbox import Outbox
from venue_agent.schedule import DEFAULT_TIMEZONE, ScheduleBook
from venue_agent.status import snapshot


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({"timezone": "America/New_York"}, "America/New_York"),
        ({}, DEFAULT_TIMEZONE),  # a server older than the field
        ({"timezone": "Mars/Olympus_Mons"}, DEFAULT_TIMEZONE),  # unknown here
        ({"timezone": 8}, DEFAULT_TIMEZONE),
    ],
)
def test_the_zone_comes_with_the_schedule_and_survives_a_restart(
    tmp_path: Path, sent: dict[str, object], kept: str
) -> None:
    assert DEFAULT_TIMEZONE == "Asia/Shanghai"
    outbox = Outbox.open(tmp_path)
    try:
        book = ScheduleBook()
        book.replace(outbox, {"sessions": [], **sent}, '"v1"', "2026-12-05T00:00:00Z")
        assert book.timezone == kept
        again = ScheduleBook.load(outbox)
        assert again.timezone == kept and str(again.zone) == kept
        assert snapshot(outbox, again, datetime.now(UTC))["timezone"] == kept
    finally:
        outbox.close()
