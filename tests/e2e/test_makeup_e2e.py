"""A make-up session (补学) end to end with real processes (issue 15): a lesson is broadcast from
a real Chromium and recorded; at two branch venues, members check in through the scanners of two
real `hetang-agent`s in six ways (on time, late but long enough, left early, late and short, in
the wrong room, not at all) while six more stay away. A make-up session is then created from the
lesson's recording: its roster is the lesson's make-up list (补训名单), and a member the lesson
already credited is added to it. The server plays the recording through the relay to the same
two agents, and the six who stayed away check in in the same six ways at the same moments of the
make-up. Their results equal the lesson's, status for status and flag for flag; they are credited
as 补学 of the lesson, the member credited twice is flagged repeat and credited nothing, and the
month's report counts the make-up's person-times apart."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from tests.support.chromium import console_sync, launched_sync, needs_chromium
from tests.support.procs import (
    Agent,
    Agents,
    Server,
    add_city,
    schedule_of,
    settled,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.solo, needs_chromium]
PASSWORD = "makeup-e2e-password"
TOPIC = "MAKEUP-E2E"
LENGTH_S = 60
LEAD_S = 8  # each broadcast goes on air this long before its session starts
# Half the lesson is enough, and a minute late is late: the six ways differ within a minute.
POLICY = {"min_ratio": 0.5, "late_grace_min": 0, "early_grace_min": 0}
# Each way of attending: the venue assigned, the venue scanned at, and the scans (kind, seconds
# from the session's start).
WAYS: dict[str, tuple[str, str | None, tuple[tuple[str, int], ...]]] = {
    "on_time": ("b1", "b1", (("in", -5),)),
    "late_but_long": ("b2", "b2", (("in", 12),)),
    "left_early": ("b1", "b1", (("in", -5), ("out", 15))),
    "late_and_short": ("b2", "b2", (("in", 40),)),
    "wrong_room": ("b2", "b1", (("in", -5),)),
    "stayed_away": ("b1", None, ()),
}
# What ATTENDANCE.md makes of each: (status, reason, flags).
EXPECTED = {
    "on_time": ("present", None, []),
    "late_but_long": ("present", None, ["late"]),
    "left_early": ("partial", "short_stay", ["left_early"]),
    "late_and_short": ("partial", "short_stay", ["late"]),
    "wrong_room": ("present", None, ["wrong_venue"]),
    "stayed_away": ("absent", "no_checkin", []),
}
LIVE, MAKEUP = "x", "y"  # the members who attend live, and those who make up


def number(group: str, way: str) -> str:
    """The member number of one group's member attending one way."""
    return f"{group}-{way}"


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with launched_sync() as browser:
        yield browser


def _city(server: Server) -> None:
    add_city(server.api, server.env, "cz", "滁州市", PASSWORD)
    for group in (LIVE, MAKEUP):
        for way in WAYS:
            server.api(
                "POST",
                "members",
                {
                    "member_no": number(group, way),
                    "name": f"党员{group}{len(way)}",
                    "org_code": "cz",
                    "category": "ordinary",
                    "card_code": f"card-{number(group, way)}",
                },
            )


def _venue(server: Server, code: str, name: str) -> str:
    token: str = server.api("POST", "venues", {"code": code, "name": name, "org_code": "cz"})[
        "token"
    ]
    return token


def _session(server: Server, start: datetime, main: str, branches: list[str], **extra: Any) -> str:
    session_id: str = server.api(
        "POST",
        "sessions",
        {
            "title": "村党组织书记全覆盖兜底培训",
            "topic_code": TOPIC,
            "credit_hours": 2,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(seconds=LENGTH_S)).isoformat(),
            "main_venue": main,
            "branch_venues": branches,
            "policy": POLICY,
            **extra,
        },
    )["id"]
    return session_id


def _until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _attend(agents: dict[str, Agent], group: str, start: datetime) -> int:
    """The group's members scan their cards at the moments of WAYS; answers how many scans."""
    scans = sorted(
        (offset, venue, kind, f"card-{number(group, way)}")
        for way, (_, venue, moments) in WAYS.items()
        if venue is not None
        for kind, offset in moments
    )
    for offset, venue, kind, card in scans:
        _until(start + timedelta(seconds=offset))
        agent = agents[venue]
        if kind == "in":
            agent.scan(card)
            continue
        journaled = len(agent.journal())
        agent.scan_mode("out")
        agent.scan(card)
        wait_until(lambda a=agent, n=journaled: len(a.journal()) > n or None, "a 签退")
        agent.scan_mode("in")
    return len(scans)


def _decoding(agents: dict[str, Agent]) -> None:
    for code, agent in agents.items():
        wait_until(lambda agent=agent: agent.frames_decoded() > 0, f"{code} decoding", timeout=30)


def _results(server: Server, session_id: str) -> dict[str, tuple[Any, ...]]:
    """Each member's (status, reason, flags, credit_hours, verified_seconds)."""
    answer = server.api("GET", f"sessions/{session_id}/attendance")
    return {
        line["member_no"]: (
            line["status"],
            line["reason"],
            line["flags"],
            line["credit_hours"],
            line["verified_seconds"],
        )
        for line in answer["members"]
    }


def _put_roster(server: Server, session_id: str, lines: list[tuple[str, str]]) -> None:
    body = "member_no,venue\n" + "".join(f"{no},{venue}\n" for no, venue in lines)
    request = urllib.request.Request(  # noqa: S310  (our server on loopback)
        f"{server.url}/api/v1/sessions/{session_id}/roster",
        data=body.encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {server.admin_token}", "Content-Type": "text/csv"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 200


def test_a_makeup_from_the_recording_judges_and_credits_as_the_lesson_did(
    server: Server, agents: Agents, chromium: Browser, tmp_path: Path, capsys: Any
) -> None:
    _city(server)
    server.api("POST", "venues", {"code": "m", "name": "市委党校主会场", "org_code": "cz"})
    tokens = {code: _venue(server, code, f"{code}分会场") for code in ("b1", "b2")}
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
    roster = [
        {"member_no": number(group, way), "venue": assigned}
        for group in (LIVE, MAKEUP)
        for way, (assigned, _, _) in WAYS.items()
    ]
    lesson = _session(server, start, "m", ["b1", "b2"], roster=roster)
    running = {code: agents.start(tmp_path / code, server.url, tokens[code]) for code in tokens}
    for agent in running.values():
        schedule_of(agent)

    # The lesson, live: on air from the console before it starts, the live group attends.
    context, page = console_sync(chromium, server.url, lesson, "op", PASSWORD)
    _until(start - timedelta(seconds=LEAD_S))
    page.get_by_role("button", name="开始直播").click()
    server.api("POST", f"sessions/{lesson}/start")
    _decoding(running)
    scans = _attend(running, LIVE, start)
    _until(start + timedelta(seconds=LENGTH_S + 5))
    page.get_by_role("button", name="结束直播").click()
    expect(page.locator("#broadcast-status")).to_have_text("直播已结束。", timeout=20_000)
    context.close()
    journals = {code: len(agent.journal()) for code, agent in running.items()}
    assert sum(journals.values()) == scans
    for code, agent in running.items():
        settled(agent, journals[code])
    server.api("POST", f"sessions/{lesson}/end")
    server.api("POST", f"sessions/{lesson}/finalize")
    live = _results(server, lesson)
    for way, (status, reason, flags) in EXPECTED.items():
        assert live[number(LIVE, way)][:3] == (status, reason, flags), way
        assert live[number(MAKEUP, way)][:3] == ("absent", "no_checkin", []), way
    [recording] = server.api("GET", f"sessions/{lesson}/recordings")["recordings"]
    assert recording["duration_s"] >= LENGTH_S + LEAD_S

    # The make-up: its roster is the lesson's make-up list, plus one member the lesson credited.
    makeup_start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    makeup = _session(
        server,
        makeup_start,
        "b1",
        ["b2"],
        title="补学：村党组织书记全覆盖兜底培训",
        replay_of=lesson,
    )
    shown = server.api("GET", f"sessions/{makeup}")
    assert shown["replay_of"] == lesson
    makeup_list = sorted(
        (no, assigned)
        for no, (status, *_) in live.items()
        if status in ("absent", "partial")
        for assigned in [next(line["venue"] for line in roster if line["member_no"] == no)]
    )
    stored = server.query(
        "SELECT m.member_no, v.code FROM roster_entries r JOIN members m ON m.id = r.member_id "
        "JOIN venues v ON v.id = r.venue_id JOIN training_sessions s ON s.id = r.session_id "
        "WHERE s.public_id = ? ORDER BY m.member_no",
        makeup,
    )
    assert [tuple(row) for row in stored] == makeup_list and len(makeup_list) == 9
    twice = number(LIVE, "on_time")
    _put_roster(server, makeup, [*makeup_list, (twice, "b1")])
    wait_until(lambda: makeup in running["b2"].schedule(), "the make-up in b2's schedule")
    wait_until(
        lambda: twice in running["b1"].schedule().get(makeup, ()),
        "the make-up's new roster in b1's schedule",
    )

    # Played from the recording to both agents; the make-up group attends as the live one did.
    _until(makeup_start - timedelta(seconds=LEAD_S))
    server.api("POST", f"sessions/{makeup}/replay")
    server.api("POST", f"sessions/{makeup}/start")
    _decoding(running)
    _until(makeup_start - timedelta(seconds=5))
    running["b1"].scan(f"card-{twice}")
    scans = _attend(running, MAKEUP, makeup_start) + 1
    _until(makeup_start + timedelta(seconds=LENGTH_S + 2))
    for code, agent in running.items():
        journals[code] = len(agent.journal())
        settled(agent, journals[code])
    assert sum(journals.values()) == 2 * scans - 1
    server.api("DELETE", f"sessions/{makeup}/broadcast")
    server.api("POST", f"sessions/{makeup}/end")
    server.api("POST", f"sessions/{makeup}/finalize")

    made_up = _results(server, makeup)
    with capsys.disabled():
        print("\nway: live lesson → make-up (status, reason, flags, 学时, verified s)")
        for way in WAYS:
            print(f"  {way}: {live[number(LIVE, way)]} → {made_up[number(MAKEUP, way)]}")
        print(f"  credited by the lesson, again at the make-up: {made_up[twice]}")
    for way, expected in EXPECTED.items():
        assert made_up[number(MAKEUP, way)][:3] == live[number(LIVE, way)][:3] == expected, way
        assert made_up[number(MAKEUP, way)][3] == live[number(LIVE, way)][3], way
    assert made_up[twice][:3] == ("present", None, ["repeat"]) and made_up[twice][3] == 0
    for way in ("left_early", "late_and_short", "stayed_away"):
        assert made_up[number(LIVE, way)][:3] == ("absent", "no_checkin", []), way
    verified = server.api("GET", f"sessions/{makeup}/attendance")["venues"]
    assert all(venue["up_seconds"] >= LENGTH_S - 10 for venue in verified), verified

    # Credited as 补学 of the lesson, once: the twice-seen member holds the lesson's record only.
    credited = server.query(
        "SELECT m.member_no, s.public_id, r.credit_hours FROM training_records r "
        "JOIN members m ON m.id = r.member_id JOIN training_sessions s ON s.id = r.session_id "
        "ORDER BY m.member_no"
    )
    present = [way for way, (status, _, _) in EXPECTED.items() if status == "present"]
    assert sorted((no, sid) for no, sid, _ in credited) == sorted(
        [(number(LIVE, way), lesson) for way in present]
        + [(number(MAKEUP, way), makeup) for way in present]
    )
    record = server.api("GET", f"members/{number(MAKEUP, 'on_time')}/record")
    [entry] = [e for e in record["entries"] if e["session_id"] == makeup]
    assert entry["makeup_of"] == {"session_id": lesson, "title": "村党组织书记全覆盖兜底培训"}
    assert entry["credit_hours"] == 2 and record["earned_hours"] == 2
    month = makeup_start.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    report = server.api("GET", f"reports/monthly?org=cz&month={month}")
    assert (report["person_times"], report["makeup_person_times"]) == (7, 4)
