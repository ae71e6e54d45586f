"""At least once across a crash: the real `hetang serve` is killed with SIGKILL after a change
and before its event was delivered; started again, it delivers the event, signed, once taken."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.support.procs import Server, free_port, stop_process, wait_until

pytestmark = pytest.mark.slow


# Delivering to loopback, retrying fast.
FAST = {
    "HETANG_WEBHOOK_ALLOW_PRIVATE": "1",
    "HETANG_WEBHOOK_RETRY_BASE_S": "0.2",
    "HETANG_WEBHOOK_POLL_S": "0.2",
    "HETANG_WEBHOOK_TIMEOUT_S": "2",
}


@dataclass
class ThreadReceiver:
    """A receiver on 127.0.0.1 in a thread: verifies, records and answers 200."""

    port: int
    secret: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    Webhook(outer.secret).verify(raw, dict(self.headers.items()))
                except Exception as error:  # every kind fails the test
                    outer.problems.append(repr(error))
                outer.bodies.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def crashing(template: tuple[Path, str], tmp_path: Path) -> Iterator[Server]:
    """`hetang serve` on a copy of the template, delivering webhooks to loopback."""
    shutil.copytree(template[0], tmp_path / "server")
    running = Server(tmp_path / "server", template[1], settings=FAST).start()
    yield running
    running.stop()


def test_a_server_killed_before_delivering_delivers_after_restart(
    crashing: Server,
) -> None:
    server = crashing
    server.api(
        "POST",
        "organizations",
        {"code": "c", "name": "滁州市", "level": "city", "parent_code": None},
    )
    server.api("POST", "venues", {"code": "V1", "name": "主会场", "org_code": "c"})
    receiver = ThreadReceiver(free_port())  # not listening yet: nothing can be delivered
    created = server.api(
        "POST",
        "webhooks",
        {
            "url": f"http://127.0.0.1:{receiver.port}/hook",
            "events": ["session.scheduled", "session.started"],
            "org_code": "c",
        },
    )
    receiver.secret = created["secret"]
    body = {
        "title": "断电演练",
        "topic_code": "T-1",
        "starts_at": "2026-03-02T01:00:00Z",
        "ends_at": "2026-03-02T03:00:00Z",
        "credit_hours": 2,
        "main_venue": "V1",
        "roster": [],
    }
    public_id = server.api("POST", "sessions", body)["id"]
    server.api("POST", f"sessions/{public_id}/start")
    assert server.process is not None
    stop_process(server.process, signal.SIGKILL)
    server.process = None
    pending = server.query("SELECT event_type, status FROM webhook_deliveries ORDER BY id")
    assert pending == [("session.scheduled", "pending"), ("session.started", "pending")]
    receiver.start()
    try:
        server.start()
        wait_until(lambda: len(receiver.bodies) >= 2, "both events after the restart", 60)
        wait_until(
            lambda: (
                server.query("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                == [(2,)]
            ),
            "the deliveries to be stored as taken",
        )
    finally:
        receiver.stop()
    assert receiver.problems == []
    assert [b["type"] for b in receiver.bodies] == ["session.scheduled", "session.started"]
    assert {b["data"]["session_id"] for b in receiver.bodies} == {public_id}
