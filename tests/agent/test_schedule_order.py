"""Which open session a scan goes to when two take check-ins at once: a make-up (补学) held right
after the lesson it replays has the same members on its roster, and their scans belong to the
session on now, not to the one that ended minutes ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from venue_agent.schedule import ScheduleBook, parse_schedule

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def _session(public_id: str, start: datetime, minutes: int) -> dict[str, object]:
    return {
        "id": public_id,
        "title": public_id,
        "topic_code": "T",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=minutes)).isoformat(),
        "state": "scheduled",
        "role": "branch",
        "roster": [{"member_no": "M1", "name": "张三", "card_code": "C1"}],
    }


def _book() -> ScheduleBook:
    lesson = _session("lesson", T0, 60)
    makeup = _session("makeup", T0 + timedelta(minutes=70), 60)
    return ScheduleBook(parse_schedule({"sessions": [makeup, lesson]}))


def test_the_session_on_now_takes_the_scan() -> None:
    book = _book()
    during_makeup = T0 + timedelta(minutes=75)  # the lesson still takes late check-outs
    assert [s.public_id for s in book.open_sessions(during_makeup)] == ["makeup", "lesson"]
    session, match = book.session_for("C1", during_makeup)
    assert session is not None and session.public_id == "makeup"
    assert match is not None and match.member.member_no == "M1"
    during_lesson = T0 + timedelta(minutes=45)  # the make-up already takes early check-ins
    assert [s.public_id for s in book.open_sessions(during_lesson)] == ["lesson", "makeup"]
    assert book.current(during_lesson) is not None
    assert book.session_for("M1", during_lesson)[0].public_id == "lesson"  # type: ignore[union-attr]


def test_between_two_sessions_the_nearest_one_takes_the_scan() -> None:
    book = _book()
    just_after_lesson = T0 + timedelta(minutes=62)
    assert book.session_for("M1", just_after_lesson)[0].public_id == "lesson"  # type: ignore[union-attr]
    just_before_makeup = T0 + timedelta(minutes=68)
    assert book.session_for("M1", just_before_makeup)[0].public_id == "makeup"  # type: ignore[union-attr]
    long_after = T0 + timedelta(minutes=140)
    assert [s.public_id for s in book.open_sessions(long_after)] == ["makeup"]
