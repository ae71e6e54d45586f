"""The real agent on a bad link to the real server: after an outage the queue drains as soon as
the server answers anything, and a slow link never shifts a check-in's time, while a clock that
really is off is still corrected, by the offset the agent measured from its round trips."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.agent.test_agent_sync import setup_session
from tests.support.delay_proxy import DelayProxy
from tests.support.procs import (
    BIN,
    DEADLINE_S,
    OUTAGE_DEADLINE_S,
    Agent,
    Agents,
    Server,
    clean_env,
    free_port,
    schedule_of,
    settled,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.solo]
OUTAGE_S = 35.0  # long enough for the upload backoff to reach 16–32 s between tries
DRAIN_WITHIN = timedelta(seconds=2)
LINK_DELAY_S = 3.0
SKEW = timedelta(minutes=-5)  # the second agent's clock is five minutes slow

# The agent with a wrong clock: the real `hetang-agent`, run under libfaketime (Debian's
# `faketime`, installed by .ci/run), so its process reads a wall clock five minutes slow the way
# a machine whose clock is off would; the monotonic clock is left alone, as it is on such a PC.
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def utc(raw: object) -> datetime:
    """A time read from the server's SQLite file (naive UTC)."""
    value = datetime.fromisoformat(str(raw))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def last_seen(server: Server, venue_token_session: str) -> datetime | None:
    """When the server last heard a hello or heartbeat of the session's branch venue."""
    rows = server.query(
        "SELECT v.agent_last_seen_at FROM venues v "
        "JOIN session_venues sv ON sv.venue_id = v.id "
        "JOIN training_sessions s ON s.id = sv.session_id "
        "WHERE s.public_id = ? AND sv.role = 'branch'",
        venue_token_session,
    )
    return utc(rows[0][0]) if rows and rows[0][0] is not None else None


def stored_times(server: Server, session_id: str) -> dict[str, tuple[datetime, datetime, datetime]]:
    """event_id → (at_raw, at, received_at) of the session's stored check-ins."""
    rows = server.query(
        "SELECT c.event_id, c.at_raw, c.at, c.received_at FROM checkins c "
        "JOIN training_sessions s ON s.id = c.session_id WHERE s.public_id = ?",
        session_id,
    )
    return {str(e): (utc(raw), utc(at), utc(received)) for e, raw, at, received in rows}


def test_the_queue_drains_as_soon_as_the_server_answers_again(
    server: Server, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    agent = agents.start(tmp_path / "agent", server.url, venue.token)
    schedule_of(agent)
    wait_until(lambda: last_seen(server, venue.session_id), "a first heartbeat")
    server.stop()
    agent.scan(numbers[0], numbers[1])
    wait_until(lambda: len(agent.printed("签到成功")) == 2, "two scans accepted offline")
    time.sleep(OUTAGE_S)  # the uploader retries, further and further apart
    assert stored_times(server, venue.session_id) == {}
    back_at = datetime.now(UTC)
    server.start()
    # The first hello or heartbeat after the outage, caught as soon as the server stores it.

    def answered_again() -> datetime | None:
        seen = last_seen(server, venue.session_id)
        return seen if seen is not None and seen > back_at else None

    first_answer = wait_until(
        answered_again, "the agent to reach the server again", OUTAGE_DEADLINE_S
    )
    journal = settled(agent, 2)
    assert [state for _, state, _ in journal] == ["sent"] * 2
    stored = stored_times(server, venue.session_id)
    assert sorted(stored) == sorted(event_id for event_id, _, _ in journal)
    first_upload = min(received for _, _, received in stored.values())
    assert first_upload >= back_at
    assert first_upload - first_answer <= DRAIN_WITHIN, (first_answer, first_upload, back_at)
    assert agent.stop() == 0


class SkewedAgent(Agent):
    """`hetang-agent run` (scanner on stdin) on a machine whose clock is off by `skew`."""

    def __init__(self, data_dir: Path, server_url: str, token: str, skew: timedelta) -> None:
        self.data_dir, self.server_url, self.token = data_dir, server_url, token
        self.ui_port = free_port()
        self.lines = []
        args = [str(BIN / "hetang-agent"), "run", "--server", server_url]
        args += ["--data-dir", str(data_dir)]
        args += ["--ui-port", str(self.ui_port), "--ice-hosts", "127.0.0.1", "--scanner", "stdin"]
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / "agent.log").open("ab") as log:
            self.process = subprocess.Popen(
                args,
                env=clean_env(
                    HETANG_AGENT_TOKEN=token,
                    LD_PRELOAD=str(FAKETIME_LIB),
                    FAKETIME=f"{skew.total_seconds():+.0f}",
                    FAKETIME_DONT_FAKE_MONOTONIC="1",
                    FAKETIME_NO_CACHE="1",
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        wait_until(lambda: self.status() is not None, "the skewed agent's staff page")


@pytest.fixture
def slow_link(server: Server) -> Iterator[DelayProxy]:
    """Every request to the server arrives LINK_DELAY_S late."""
    proxy = DelayProxy(server.port, LINK_DELAY_S)
    yield proxy
    proxy.close()


@pytest.mark.skipif(
    not FAKETIME_LIB.exists(), reason=f"libfaketime is not installed ({FAKETIME_LIB})"
)
def test_a_slow_link_does_not_shift_times_but_a_wrong_clock_is_corrected(
    server: Server, slow_link: DelayProxy, agents: Agents, tmp_path: Path
) -> None:
    venue = setup_session(server)
    numbers = list(venue.members)
    honest = agents.start(tmp_path / "honest", slow_link.url, venue.token)
    skewed = SkewedAgent(tmp_path / "skewed", slow_link.url, venue.token, SKEW)
    agents.started.append(skewed)
    schedule_of(honest)
    schedule_of(skewed)
    scanned: dict[Agent, tuple[datetime, datetime]] = {}
    for agent, number in ((honest, numbers[0]), (skewed, numbers[1])):
        before = datetime.now(UTC)
        agent.scan(number)
        wait_until(lambda: agent.printed("签到成功"), "the scan accepted", DEADLINE_S)  # noqa: B023
        scanned[agent] = (before, datetime.now(UTC))
    [(honest_id, _, _)] = settled(honest, 1)
    [(skewed_id, _, _)] = settled(skewed, 1)
    stored = stored_times(server, venue.session_id)

    at_raw, at, received = stored[honest_id]
    before, after = scanned[honest]
    assert before - timedelta(seconds=1) <= at_raw <= after
    assert received - at_raw >= timedelta(seconds=LINK_DELAY_S)  # the link was slow indeed
    assert at == at_raw  # and that changed nothing

    at_raw, at, received = stored[skewed_id]
    before, after = scanned[skewed]
    assert before + SKEW - timedelta(seconds=1) <= at_raw <= after + SKEW
    # Corrected by what it measured: within half a round trip (1.5 s) and the whole second.
    assert before - timedelta(seconds=3) <= at <= after + timedelta(seconds=3)
    assert abs((at - at_raw) + SKEW) <= timedelta(seconds=3)
    for agent in (honest, skewed):
        assert agent.stop() == 0
