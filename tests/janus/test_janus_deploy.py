"""deploy/janus (the image docker compose builds for the origin and the edges) run here as the
image runs it: start.sh on deploy/janus/conf starts Janus under its name with its RTP ports, the
HTTP API answers, and the event handler posts its events, as that instance, with the metrics
token as its basic-auth password, to the address it was given."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.janus import needs_janus
from tests.support.procs import clean_env, free_port, stop_process, wait_until

pytestmark = [needs_janus, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "deploy-metrics-token-0123"


@pytest.fixture
def sink() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    """An HTTP endpoint recording each POST's Authorization header and JSON body."""
    received: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.headers.get("Authorization", ""), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/janus/events", received
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310  (a local Janus)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        reply: dict[str, Any] = json.loads(answer.read())
    return reply


def test_start_script_runs_janus_as_the_image_does(
    tmp_path: Path, sink: tuple[str, list[tuple[str, Any]]]
) -> None:
    events_url, received = sink
    port = free_port()
    env = clean_env(
        HETANG_JANUS_CONF=str(ROOT / "deploy" / "janus" / "conf"),
        HETANG_JANUS_API_PORT=str(port),
        HETANG_EVENTS_URL=events_url,
        HETANG_METRICS_TOKEN=TOKEN,
        TMPDIR=str(tmp_path),
    )
    log = (tmp_path / "janus.log").open("wb")
    process = subprocess.Popen(
        ["sh", str(ROOT / "deploy" / "janus" / "start.sh"), "edge-9", "47100-47199"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    api = f"http://127.0.0.1:{port}/janus"
    try:

        def answers() -> bool | None:
            assert process.poll() is None, (tmp_path / "janus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(api + "/info", timeout=2) as reply:  # noqa: S310
                    return json.loads(reply.read())["janus"] == "server_info" or None
            except OSError:
                return None

        wait_until(answers, "Janus to answer /janus/info", timeout=20)
        session = _post(api, {"janus": "create", "transaction": "t1"})["data"]["id"]
        attached = _post(
            f"{api}/{session}",
            {"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": "t2"},
        )
        assert attached["janus"] == "success", "the VideoRoom plugin is loaded"
        wait_until(lambda: received or None, "the event handler to post", timeout=20)
    finally:
        stop_process(process, signal.SIGINT)
    text = (tmp_path / "janus.log").read_text()
    assert "47100-47199" in text or "47100" in text, "the RTP range it was given"
    authorization, body = received[0]
    assert authorization.startswith("Basic ")
    user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    assert (user, password) == ("janus", TOKEN)
    events = body if isinstance(body, list) else [body]
    assert all(event.get("emitter") == "edge-9" for event in events)
    assert {event["type"] for event in events} <= {1, 2, 16, 32, 64}  # no SDPs (jsep: 8)
