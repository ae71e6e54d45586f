"""The real agent against the real server: scans arrive exactly once, whatever fails when."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.procs import (
    Agent,
    Agents,
    FlakyNetwork,
    Server,
    agent_cli,
    clean_env,
    quarantined,
    schedule_of,
    settled,
    stored_checkins,
    wait_until,
)

pytestmark = pytest.mark.slow
DEADLINE_S = 90.0  # an outage's backoff grows to 60 s at most; the agent retries within that


@dataclass(frozen=True)
class Venue:
    """A branch venue with a session now and its roster."""

    token: str
    session_id: str
    members: dict[str, str]  # member_no → card_code


def setup_session(server: Server, roster_size: int = 3) -> Venue:
    """An organization, members, a main and a branch venue, and a session running now."""
    tag = uuid.uuid4().hex[:6]
    server.api(
        "POST",
        "organizations",
        {"code": f"org-{tag}", "name": "西泉镇党委", "level": "city", "parent_code": None},
    )
    members = {}
    for n in range(roster_size + 1):  # the last one is a member, but not on the roster
        number, card = f"{tag}-M{n}", f"{tag}-C{n}"
        server.api(
            "POST",
            "members",
            {
                "member_no": number,
                "name": f"党员{n}",
                "org_code": f"org-{tag}",
                "category": "ordinary",
                "card_code": card,
            },
        )
        members[number] = card
    server.api(
        "POST", "venues", {"code": f"main-{tag}", "name": "主会场", "org_code": f"org-{tag}"}
    )
    branch = server.api(
        "POST", "venues", {"code": f"b-{tag}", "name": "西泉村分会场", "org_code": f"org-{tag}"}
    )
    now = datetime.now(UTC)
    roster = list(members)[:roster_size]
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十大精神专题培训",
            "topic_code": f"T-{tag}",
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "credit_hours": 2,
            "main_venue": f"main-{tag}",
            "branch_venues": [f"b-{tag}"],
            "roster": [{"member_no": number, "venue": f"b-{tag}"} for number in roster],
        },
    )
    return Venue(branch["token"], session["id"], members)


def test_scans_arrive_exactly_once(server: Server, agents: Agents, tmp_path: Path) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    schedule_of(agent)
    # by card, by number, a repeated scan, and the card of a walk-in (a member who is not on
    # the roster: the agent cannot tell what an unknown code is, and sends it as a card)
    agent.scan(venue.members[numbers[0]], numbers[1], numbers[1], venue.members[numbers[3]])
    journal = settled(agent, 4)
    assert [state for _, state, _ in journal] == ["sent"] * 4
    stored = stored_checkins(server, venue.session_id)
    assert sorted(e for e, *_ in stored) == sorted(e for e, _, _ in journal)
    assert sorted(n for _, n, _, _ in stored) == sorted(
        [numbers[0], numbers[1], numbers[1], numbers[3]]
    )
    assert {source for *_, source in stored} == {"scanner"}
    assert agent.printed(f"签到成功：党员0（{numbers[0]}）")
    # the heartbeat tells the server what the agent is doing
    wait_until(
        lambda: (
            server.query(
                "SELECT agent_state, agent_session_id, agent_queue_depth, agent_version "
                "FROM venues WHERE agent_session_id IS NOT NULL"
            )
            == [("idle", venue.session_id, 0, "0.1.0")]
        ),
        "a heartbeat with the session and an empty queue",
        DEADLINE_S,
    )
    data = agent.status()
    assert data is not None and data["online"] is True and data["last_sync"]
    assert data["venue"]["name"] == "西泉村分会场"
    assert agent.stop() == 0
    status = json.loads(agent_cli("status", "--data-dir", str(tmp_path / "agent"), "--json").stdout)
    assert status["queue_depth"] == 0 and status["rejected_count"] == 0 and status["last_sync"]


def test_an_unknown_code_is_quarantined_and_shown_as_rejected(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    schedule_of(agent)
    agent.scan("NO-SUCH-CARD")
    line = wait_until(lambda: agent.printed("NO-SUCH-CARD"), "the warning")[0]
    assert line.startswith("\a✗") and "不在本场次名单中" in line
    [(event_id, state, reason)] = settled(agent, 1)
    assert (state, reason) == ("rejected", "unknown_member")
    assert quarantined(server) == [(event_id, "unknown_member")]
    assert stored_checkins(server, venue.session_id) == []
    data = wait_until(lambda: (agent.status() or {}).get("rejected"), "the rejected list")
    assert data[0]["code"] == "NO-SUCH-CARD" and data[0]["reason"] == "unknown_member"
    assert agent.stop() == 0
    text = agent_cli("status", "--data-dir", str(tmp_path / "agent")).stdout
    assert "rejected:          1" in text and "queue depth:      0" in text


def test_the_agent_works_offline_and_delivers_after_the_server_returns(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    schedule_of(agent)
    server.stop()
    agent.scan(numbers[0], numbers[1])
    wait_until(lambda: len(agent.printed("签到成功")) == 2, "two scans accepted offline")
    # A restart while offline works from the schedule kept on disk.
    assert agent.stop() == 0
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    agent.scan(numbers[2])
    wait_until(lambda: agent.printed(f"签到成功：党员2（{numbers[2]}）"), "a scan offline")
    data = wait_until(agent.status, "status.json")
    assert data["online"] is False and data["queue_depth"] == 3
    status = agent_cli("status", "--data-dir", str(tmp_path / "agent"), "--json")
    assert json.loads(status.stdout)["queue_depth"] == 3
    server.start()
    journal = settled(agent, 3)
    assert [state for _, state, _ in journal] == ["sent"] * 3
    stored = stored_checkins(server, venue.session_id)
    assert sorted(e for e, *_ in stored) == sorted(e for e, _, _ in journal)
    wait_until(lambda: (agent.status() or {}).get("online") is True, "online again")
    assert agent.stop() == 0


def _answered(agent: Agent) -> list[str]:
    """The scans staff were told about (each only once it was journaled)."""
    return agent.printed("签到成功") + agent.printed("已在场")


def test_a_killed_agent_resumes_and_nothing_is_counted_twice(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server, roster_size=5)
    numbers = list(venue.members)[:5]
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    schedule_of(agent)
    scans = [numbers[n % 5] for n in range(400)]
    agent.scan(*scans)
    # The first scan of each is 签到成功, every later one 已在场 (journaled all the same).
    wait_until(lambda: len(_answered(agent)) >= 100, "some scans")
    assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
    acknowledged = len(_answered(agent))
    journaled = len(agent.journal())
    assert acknowledged <= journaled <= len(scans)  # shown only after it was committed
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    agent.scan(numbers[0])
    journal = settled(agent, journaled + 1)
    assert {state for _, state, _ in journal} == {"sent"}
    stored = stored_checkins(server, venue.session_id)
    assert len(stored) == journaled + 1
    assert sorted(e for e, *_ in stored) == sorted(e for e, _, _ in journal)
    assert agent.stop() == 0


@pytest.fixture
def network(server: Server) -> Iterator[FlakyNetwork]:
    """The network double between agent and server."""
    flaky = FlakyNetwork(server.url)
    yield flaky
    flaky.close()


def test_failures_are_retried_and_retry_after_is_honoured(
    server: Server, network: FlakyNetwork, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    network.script["/checkins"] = [(503, {}), (429, {"Retry-After": "3"})]
    agent = agents.start(tmp_path / "agent", network.url, venue.token)
    schedule_of(agent)
    agent.scan(numbers[0], numbers[1])
    settled(agent, 2)
    tries = network.exchanges("/checkins")
    assert [t.status for t in tries][:2] == [503, 429]
    assert tries[-1].status == 200
    after_429 = [t for t in tries if t.at > tries[1].at]
    assert after_429 and after_429[0].at - tries[1].at >= 3.0  # not one moment earlier
    sent_ids = {e["event_id"] for t in tries for e in t.body["events"]}
    stored = stored_checkins(server, venue.session_id)
    assert sorted(e for e, *_ in stored) == sorted(sent_ids)  # every try was the same events
    schedules = network.exchanges("/schedule")
    assert schedules[0].status == 200
    assert "If-None-Match" not in schedules[0].headers
    # The failed upload meant the server was gone: hello again once it is back.
    wait_until(
        lambda: [h for h in network.exchanges("/hello") if h.at > tries[0].at],
        "hello after the outage",
        DEADLINE_S,
    )
    assert agent.stop() == 0
    # A restarted agent asks with the ETag it kept, and the unchanged schedule costs a 304.
    agent = agents.start(tmp_path / "agent", network.url, venue.token)
    again = wait_until(lambda: network.exchanges("/schedule")[1:], "a second GET schedule")
    assert again[0].headers["If-None-Match"] == schedules[0].answer_headers["ETag"]
    assert again[0].status == 304
    assert agent.stop() == 0


def test_a_batch_refused_with_a_4xx_is_never_resent(
    server: Server, network: FlakyNetwork, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    network.script["/checkins"] = [(422, {})]
    agent = agents.start(tmp_path / "agent", network.url, venue.token)
    schedule_of(agent)
    agent.scan(numbers[0])
    [(refused_id, state, reason)] = settled(agent, 1)
    assert (state, reason) == ("rejected", "http_422 test")
    agent.scan(numbers[1])
    journal = settled(agent, 2)
    assert journal[1][1] == "sent"
    seen = [e["event_id"] for t in network.exchanges("/checkins") for e in t.body["events"]]
    assert seen.count(refused_id) == 1
    assert [e for e, *_ in stored_checkins(server, venue.session_id)] == [journal[1][0]]
    data = wait_until(lambda: (agent.status() or {}).get("rejected"), "the rejected list")
    assert data[0]["reason"] == "http_422 test"
    assert agent.stop() == 0


def test_a_running_agent_uploads_an_imported_sheet_in_batches(
    server: Server, network: FlakyNetwork, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)[:3]
    agent = agents.start(tmp_path / "agent", network.url, venue.token)
    schedule_of(agent)
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [f"{numbers[n % 3]},in,{(now - timedelta(seconds=n)).isoformat()}" for n in range(1100)]
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("member_no,kind,at\n" + "\n".join(lines) + "\n", encoding="utf-8")
    args = ("import", str(sheet), "--session", venue.session_id)
    result = agent_cli(*args, "--data-dir", str(tmp_path / "agent"))
    assert result.returncode == 0 and "已加入上传队列 1100 条" in result.stdout
    journal = settled(agent, 1100)
    assert {state for _, state, _ in journal} == {"sent"}
    sizes = [len(t.body["events"]) for t in network.exchanges("/checkins")]
    assert max(sizes) <= 500 and sum(sizes) == 1100
    stored = stored_checkins(server, venue.session_id)
    assert len(stored) == 1100 and {s for *_, s in stored} == {"import"}
    assert agent.stop() == 0


def test_import_uploads_a_paper_sheet(server: Server, tmp_path: Path) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    local = datetime.now(UTC).astimezone().replace(microsecond=0)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "member_no,kind,at\n"
        f"{numbers[0]},in,{local.isoformat()}\n"
        f"{numbers[1]},,{(local - timedelta(minutes=1)).isoformat()}\n"
        f"UNKNOWN,in,{local.isoformat()}\n",
        encoding="utf-8",
    )
    env = clean_env(HETANG_AGENT_SERVER=server.url, HETANG_AGENT_TOKEN=venue.token)
    args = ("import", str(sheet), "--session", venue.session_id, "--data-dir", str(tmp_path / "a"))
    result = agent_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "被拒绝：UNKNOWN" in result.stdout and "unknown_member" in result.stdout
    stored = stored_checkins(server, venue.session_id)
    assert sorted((n, k, s) for _, n, k, s in stored) == [
        (numbers[0], "in", "import"),
        (numbers[1], "in", "import"),
    ]
    again = agent_cli(*args, env=env)
    assert "已加入上传队列 0 条" in again.stdout
    assert len(stored_checkins(server, venue.session_id)) == 2


def test_a_new_session_reaches_the_agent_through_its_events_socket(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    """The agent polls its schedule every 30 s; the events socket brings a change at once."""
    server.api(
        "POST",
        "organizations",
        {"code": "ev", "name": "西泉镇党委", "level": "city", "parent_code": None},
    )
    token = server.api("POST", "venues", {"code": "ev-v", "name": "分会场", "org_code": "ev"})[
        "token"
    ]
    agent = agents.start(tmp_path / "agent", server.url, token)
    wait_until(lambda: (agent.status() or {}).get("online") or None, "the agent online")
    time.sleep(1)  # its first schedule poll is behind it
    now = datetime.now(UTC)
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十大精神专题培训",
            "topic_code": "EV",
            "credit_hours": 1,
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "main_venue": "ev-v",
        },
    )
    current = wait_until(lambda: (agent.status() or {}).get("session"), "the new session", 10.0)
    assert current["id"] == session["id"]
