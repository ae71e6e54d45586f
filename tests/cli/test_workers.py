"""`hetang serve --workers N` (issue 17): real worker processes on one port, on PostgreSQL and
Redis. Either worker answers alone while the other is frozen; a broadcast published and
subscribed through whichever worker takes each request is one broadcast, in worker 0's relay;
a worker killed with -9 is started again while the venues keep their picture; SIGTERM stops
them all. Without PostgreSQL and Redis the command refuses and listens nowhere."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.databases import fresh_pg_or_skip
from tests.support.procs import (
    BIN,
    Server,
    clean_env,
    free_port,
    http_json,
    stop_process,
    wait_until,
    worker_pids,
    workers_server,
)
from tests.support.rtc_peers import close_all, description, offer_to_publish, offer_to_view
from tools.procfs import process

VENUES = ("b1", "b2", "b3")


def _refusal(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hetang"), "serve", *args],
        env=clean_env(HETANG_SECRET_KEY="w" * 40, **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_several_workers_need_postgresql_and_redis(tmp_path: Path) -> None:
    port = free_port()
    on_sqlite = _refusal("--workers", "2", "--port", str(port), HETANG_DATA_DIR=str(tmp_path))
    assert on_sqlite.returncode == 2
    assert "PostgreSQL" in on_sqlite.stderr and "HETANG_REDIS_URL" in on_sqlite.stderr
    assert "Traceback" not in on_sqlite.stderr
    none = _refusal("--workers", "0", "--port", str(port), HETANG_DATA_DIR=str(tmp_path))
    assert none.returncode == 2 and "give 1 to 64 processes, not 0" in none.stderr
    with pytest.raises(OSError):  # nothing listens
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def _healthy(server: Server, times: int) -> None:
    for _ in range(times):  # a new connection each time: any worker may take it
        assert http_json("GET", server.url + "/healthz", timeout=5)[0] == 200


def _setup(server: Server) -> tuple[str, dict[str, str]]:
    """A session on now with three branch venues; its id and each venue's agent token."""
    server.api(
        "POST",
        "organizations",
        {"code": "w", "name": "西泉镇党委", "level": "city", "parent_code": None},
    )
    tokens = {}
    for code in ("main", *VENUES):
        venue = server.api("POST", "venues", {"code": code, "name": f"{code}会场", "org_code": "w"})
        tokens[code] = venue["token"]
    now = datetime.now(UTC)
    session = server.api(
        "POST",
        "sessions",
        {
            "title": "党的二十届四中全会精神专题学习",
            "topic_code": "WORKERS",
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "credit_hours": 1,
            "main_venue": "main",
            "branch_venues": list(VENUES),
        },
    )
    return session["id"], tokens


async def _post(url: str, token: str, body: Any = None, method: str = "POST") -> Any:
    # A connection of its own: the kernel hands it to whichever worker accepts first.
    async with aiohttp.ClientSession() as client:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.request(method, url, json=body, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            return await answer.json()


async def _broadcast(server: Server, session_id: str, tokens: dict[str, str]) -> None:
    api = server.url + "/api/v1"
    made: list[Any] = []
    try:
        publisher = await offer_to_publish()
        made.append(publisher)
        offer = {"sdp": publisher.localDescription.sdp, "type": "offer"}
        answer = await _post(f"{api}/sessions/{session_id}/broadcast", server.admin_token, offer)
        await publisher.setRemoteDescription(description(answer))
        viewers = []
        for code in VENUES:
            viewer = await offer_to_view()
            viewers.append(viewer)
            made.append(viewer.pc)
            body = {"sdp": viewer.pc.localDescription.sdp, "type": "offer"}
            answer = await _post(f"{api}/agent/sessions/{session_id}/subscribe", tokens[code], body)
            await viewer.pc.setRemoteDescription(description(answer))
        for viewer in viewers:
            await viewer.frames_after(0, 10, within=20)
        for _ in range(8):  # every worker shows the one broadcast
            wall = await _post(
                f"{api}/sessions/{session_id}/wall", server.admin_token, method="GET"
            )
            assert wall["broadcast"]["on"] and wall["broadcast"]["subscribers"] == len(VENUES)

        # Worker 1 killed: started again, while the venues' picture (worker 0's) goes on.
        assert server.process is not None
        before = worker_pids(server.process.pid)
        os.kill(before[1], signal.SIGKILL)
        killed = time.monotonic()
        again = await asyncio.to_thread(
            wait_until,
            lambda: (w := worker_pids(server.process.pid)).get(1, before[1]) != before[1] and w,
            "worker 1 to be started again",
        )
        assert again[0] == before[0]
        for viewer in viewers:
            await viewer.frames_after(killed, 20, within=20)
        await asyncio.to_thread(_healthy, server, 20)

        ended = await _post(
            f"{api}/sessions/{session_id}/broadcast", server.admin_token, method="DELETE"
        )
        assert ended == {"on": False}
    finally:
        await close_all([*made])


@pytest.fixture
def database() -> Iterator[str]:
    yield from fresh_pg_or_skip("hetang_workers")


@pytest.mark.slow
def test_two_workers_share_the_port_and_the_relay_and_a_killed_one_comes_back(
    database: str, tmp_path: Path
) -> None:
    server = workers_server(database, tmp_path)
    try:
        assert server.process is not None
        workers = wait_until(
            lambda: len(w := worker_pids(server.process.pid)) == 2 and w, "2 workers"
        )
        for frozen in workers.values():  # each answers alone while the other is frozen
            os.kill(frozen, signal.SIGSTOP)
            try:
                _healthy(server, 10)
            finally:
                os.kill(frozen, signal.SIGCONT)
        session_id, tokens = _setup(server)
        asyncio.run(_broadcast(server, session_id, tokens))
    finally:
        assert server.process is not None
        parent = server.process.pid
        assert stop_process(server.process) == 0
        server.process = None
    assert worker_pids(parent) == {}
    log = (server.data_dir / "server.log").read_text()
    assert log.count(f"Hetang 已启动：http://127.0.0.1:{server.port}") == 1, log
    assert "worker 1" in log and "ended with code -9" in log, log


@pytest.mark.slow
def test_the_workers_end_with_a_killed_parent(database: str, tmp_path: Path) -> None:
    server = workers_server(database, tmp_path)
    assert server.process is not None
    parent = server.process.pid
    workers = wait_until(lambda: len(w := worker_pids(parent)) == 2 and w, "2 workers")
    stop_process(server.process, signal.SIGKILL)
    server.process = None
    # No orphan keeps serving the port: each worker is told when its parent dies.
    wait_until(
        lambda: not any((p := process(pid)) and p.running for pid in workers.values()),
        "the workers to end",
    )
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/healthz", timeout=2)  # noqa: S310
