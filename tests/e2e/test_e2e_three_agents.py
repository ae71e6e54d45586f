"""End to end with real processes: the server and three real `hetang-agent`s take check-ins
through their scanners while the server is stopped for 20 s and one agent is kill -9'd and
restarted. Every check-in arrives exactly once and finalization gives the expected statuses."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.procs import (
    Agent,
    Agents,
    Server,
    schedule_of,
    settled,
    stored_checkins,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.solo]
VENUES = ("m", "b1", "b2")
OUTAGE_S = 20


def _city(server: Server) -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """Three venues, ten members each on the roster, a session running now; answers the
    session id, each venue's token, and each venue's members."""
    server.api(
        "POST",
        "organizations",
        {"code": "cz", "name": "滁州市", "level": "city", "parent_code": None},
    )
    tokens, members = {}, {}
    for venue in VENUES:
        tokens[venue] = server.api(
            "POST", "venues", {"code": venue, "name": f"{venue}会场", "org_code": "cz"}
        )["token"]
        members[venue] = []
        for n in range(10):
            number = f"{venue}-{n:02d}"
            server.api(
                "POST",
                "members",
                {
                    "member_no": number,
                    "name": f"党员{number}",
                    "org_code": "cz",
                    "category": "ordinary",
                    "card_code": f"card-{number}",
                },
            )
            members[venue].append(number)
    now = datetime.now(UTC)
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "村党组织书记全覆盖兜底培训",
            "topic_code": "E2E-1",
            "credit_hours": 2,
            "starts_at": (now - timedelta(minutes=2)).isoformat(),
            "ends_at": (now + timedelta(minutes=28)).isoformat(),
            "main_venue": "m",
            "branch_venues": ["b1", "b2"],
            # No stream health reaches the server yet from the agents, so presence is what counts.
            "policy": {"require_stream_verification": False},
            "roster": [
                {"member_no": number, "venue": venue}
                for venue in VENUES
                for number in members[venue]
            ],
        },
    )
    return session["id"], tokens, members


def test_three_agents_outage_and_a_killed_agent(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    session_id, tokens, members = _city(server)
    running: dict[str, Agent] = {
        venue: agents.start(tmp_path / venue, server.url, tokens[venue]) for venue in VENUES
    }
    for agent in running.values():
        schedule_of(agent)
    # Before the outage: members 0–3 of every venue, by card and by number.
    for venue, agent in running.items():
        agent.scan(*(f"card-{n}" for n in members[venue][:2]), *members[venue][2:4])
    for agent in running.values():
        settled(agent, 4)
    # The server goes away for 20 s; scanning goes on; b1's agent is killed and restarted.
    server.stop()
    outage_began = time.monotonic()
    for venue, agent in running.items():
        agent.scan(*members[venue][4:7])
    b1 = running["b1"]
    wait_until(lambda: len(b1.journal()) == 7 or None, "b1 to journal its scans")
    assert b1.stop(signal.SIGKILL) == -signal.SIGKILL
    running["b1"] = b1 = agents.start(tmp_path / "b1", server.url, tokens["b1"])
    b1.scan(members["b1"][7])  # works offline from the cached schedule
    running["b2"].scan(members["b2"][9])
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_began)))
    server.start()
    for venue, agent in running.items():
        agent.scan(members[venue][8])
    expected = {"m": 8, "b1": 9, "b2": 9}
    journals = {venue: settled(agent, expected[venue]) for venue, agent in running.items()}
    stored = stored_checkins(server, session_id)
    assert len(stored) == sum(expected.values()), "every check-in exactly once"
    assert sorted(event for event, *_ in stored) == sorted(
        event for journal in journals.values() for event, _, _ in journal
    )
    assert all(state == "sent" for journal in journals.values() for _, state, _ in journal)
    for action in ("start", "end", "finalize"):
        server.api("POST", f"sessions/{session_id}/{action}")
    result = server.api("GET", f"sessions/{session_id}/attendance")
    statuses = {line["member_no"]: line["status"] for line in result["members"]}
    scanned = {number for venue in VENUES for number in (*members[venue][:7], members[venue][8])}
    scanned |= {members["b1"][7], members["b2"][9]}
    for number, status in statuses.items():
        assert status == ("present" if number in scanned else "absent"), number
    assert result["summary"]["expected"] == 30
    assert result["summary"]["present"] == len(scanned) == 26
    assert result["summary"]["absent"] == 4
