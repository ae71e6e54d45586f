"""What `hetang serve` prints, as `make run` starts it: one line once it is listening, and no
line per request unless asked (`--access-log`), so the demo's logins stay in view."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.procs import BIN, SECRET, clean_env, free_port, http_json, stop_process

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[str, str]:
    """Start the server on a SQLite file, wait for its line, ask it twice, stop it; answer
    (stdout, stderr)."""
    environment = clean_env(HETANG_DATA_DIR=str(tmp_path / "var"), HETANG_SECRET_KEY=SECRET, **env)
    subprocess.run(
        [str(BIN / "hetang"), "migrate"], env=environment, check=True, capture_output=True
    )
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(BIN / "hetang"), "serve", "--port", str(port), *args],
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while f":{port}" not in out.read_text():
            assert process.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "no line says the server is listening"
            time.sleep(0.05)
        # Listening when it says so: the first request after the line is answered.
        assert http_json("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert http_json("GET", f"http://127.0.0.1:{port}/login")[0] == 200
        time.sleep(0.3)
    finally:
        assert stop_process(process) == 0
    return out.read_text(), err.read_text()


def test_the_server_says_where_it_listens_and_logs_no_requests(tmp_path: Path) -> None:
    stdout, stderr = _serve(tmp_path)
    port = stdout.split(":")[-1].split("（")[0]
    assert stdout == f"Hetang 已启动：http://127.0.0.1:{port}（按 Ctrl+C 停止）\n"
    assert "GET /healthz" not in stderr and "GET /login" not in stderr
    assert "Traceback" not in stderr


def test_the_access_log_is_there_when_asked_for(tmp_path: Path) -> None:
    stdout, stderr = _serve(tmp_path, "--access-log", "--host", "127.0.0.1", HETANG_LOCALE="en")
    assert stdout.startswith("Hetang is running at http://127.0.0.1:")
    assert stdout.endswith(" (press Ctrl+C to stop)\n")
    assert '"GET /healthz HTTP/1.1" 200' in stderr and '"GET /login HTTP/1.1" 200' in stderr
