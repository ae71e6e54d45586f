"""The time zone the staff page shows every time in comes with the server's schedule, is kept on
disk with it (a restart offline keeps it), and is Asia/Shanghai when a server sends none; a paper
sheet's times without an offset are read in it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.procs import agent_cli
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


def test_a_paper_sheet_is_read_in_the_servers_zone(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path)
    try:
        raw = {"sessions": [], "timezone": "America/New_York"}
        ScheduleBook().replace(outbox, raw, '"v1"', "2026-12-05T00:00:00Z")
    finally:
        outbox.close()
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "member_no,kind,at\nM001,in,2026-12-05 09:05\nM002,in,2026-12-05T09:06+08:00\n"
    )
    done = agent_cli("import", str(sheet), "--session", "s1", "--data-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(tmp_path / "agent.sqlite3")
    try:
        rows = db.execute("SELECT json_extract(payload, '$.at') FROM outbox ORDER BY seq")
        stored = [str(at) for (at,) in rows.fetchall()]
    finally:
        db.close()
    # Written without an offset: New York's wall clock (EST in December); with one: as written.
    assert stored == ["2026-12-05T09:05:00-05:00", "2026-12-05T09:06:00+08:00"]
