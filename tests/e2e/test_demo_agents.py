"""`hetang demo-agents`: real agents for the demo city come online, and stop with the command."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.procs import BIN, Server, clean_env, stop_process, wait_until

pytestmark = pytest.mark.slow


def test_demo_agents_come_online_and_stop(server: Server, tmp_path: Path) -> None:
    server.api(
        "POST",
        "organizations",
        {"code": "cz", "name": "滁州市", "level": "city", "parent_code": None},
    )
    for code in ("main", "branch"):
        server.api("POST", "venues", {"code": code, "name": f"{code}会场", "org_code": "cz"})
    now = datetime.now(UTC)
    server.api(
        "POST",
        "sessions",
        {
            "title": "合堂培训",
            "topic_code": "D",
            "credit_hours": 1,
            "main_venue": "main",
            "branch_venues": ["branch"],
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=1, hours=2)).isoformat(),
        },
    )
    env = clean_env(
        HETANG_DATA_DIR=str(server.data_dir),
        HETANG_SECRET_KEY=server.env["HETANG_SECRET_KEY"],
        HETANG_PORT=str(server.port),
    )
    output = tmp_path / "demo-agents.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "hetang"), "--log-level", "WARNING", "demo-agents", "--count", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
    try:

        def online() -> list[str] | None:
            found = [
                v["code"] for v in server.api("GET", "venues")["venues"] if v["agent"]["online"]
            ]
            return found or None

        codes = wait_until(online, "a demo agent online", 60)
        assert codes == ["branch"]  # a branch venue of the next joint session
        audited = server.query(
            "SELECT actor FROM audit_entries WHERE action = 'venue.token_rotate' AND object_id = ?",
            codes[0],
        )
        assert audited == [("demo",)]
    finally:
        assert stop_process(process, signal.SIGTERM) == 0
    printed = output.read_text()
    session_id = server.api("GET", "sessions")["sessions"][0]["id"]
    # The newcomer is told where to press Start.
    assert f"/sessions/{session_id}/console" in printed
