"""Whole processes for tests: `hetang serve`, `hetang-agent run`, and a network double between."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.databases import REDIS_ENV
from tools.procfs import children

BIN = Path(sys.executable).parent
SECRET = "agent-test-secret-" + "k" * 32
DEADLINE_S = 30.0
OUTAGE_DEADLINE_S = 90.0  # an outage's backoff grows to 60 s at most; agents retry within it
T = TypeVar("T")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """Poll until check() is truthy (and return it); fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def http_json(
    method: str,
    url: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, Any]:
    """One JSON request; answers (status, parsed body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310  (tests call http:// only)
        url, data=data, method=method, headers=dict(headers or {})
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
        error.close()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any HETANG_* variable, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HETANG_")}
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> int:
    """Signal a process, wait for it, close its pipes; answers its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        code = process.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a pipe to a killed process may refuse a flush
                pipe.close()
    return code


def worker_pids(parent: int) -> dict[int, int]:
    """Worker index → process id, of the live workers of `hetang serve --workers` `parent`."""
    return {
        int(child.command[child.command.index("--worker") + 1]): child.pid
        for child in children(parent)
        if "--worker" in child.command
    }


@dataclass
class Server:
    """`hetang serve` on a fixed port with its own data dir (restartable on the same port)."""

    data_dir: Path
    admin_token: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # More HETANG_* settings (a PostgreSQL database, a shorter workflow round, …).
    settings: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # `hetang serve --workers`

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment of the server's CLI."""
        return clean_env(
            HETANG_DATA_DIR=str(self.data_dir),
            HETANG_SECRET_KEY=SECRET,
            HETANG_ICE_HOSTS="127.0.0.1",
            **self.settings,
        )

    def start(self) -> Server:
        """Start and wait for /healthz."""
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "hetang"), "--log-level", "WARNING", "serve", "--port", str(self.port)]
            + (["--workers", str(self.workers)] if self.workers != 1 else []),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, "server died"
            try:
                return http_json("GET", self.url + "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(healthy, "the server to answer /healthz")
        return self

    def stop(self) -> None:
        """Stop the server (its data stays)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def api(self, method: str, path: str, body: object = None) -> Any:
        """A user API call as the admin; fails unless it succeeds."""
        status, answer = http_json(
            method,
            self.url + "/api/v1/" + path,
            body,
            {"Authorization": f"Bearer {self.admin_token}"},
        )
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the server's own database."""
        db = sqlite3.connect(self.data_dir / "hetang.sqlite3", timeout=30)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()


def hetang(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run the real `hetang` CLI; answers stdout, fails with its stderr."""
    result = subprocess.run(
        [str(BIN / "hetang"), "--log-level", "WARNING", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"hetang {args} failed:\n{result.stderr}"
    return result.stdout


def add_city(
    api: Callable[..., Any], env: dict[str, str], code: str, name: str, password: str
) -> None:
    """A city organization through the API (`api` as Server.api), and its operator `op`
    with this password through the CLI (to sign in to pages)."""
    api("POST", "organizations", {"code": code, "name": name, "level": "city", "parent_code": None})
    hetang(
        env,
        "user",
        "add",
        "op",
        "--role",
        "operator",
        "--org",
        code,
        "--password-stdin",
        stdin=password,
    )


def server_template(root: Path, **settings: str) -> tuple[Path, str]:
    """A migrated data dir (or database, with HETANG_DATABASE_URL among the settings) with an
    admin and its API token, to copy for each server."""
    root.mkdir(parents=True, exist_ok=True)
    env = clean_env(HETANG_DATA_DIR=str(root), HETANG_SECRET_KEY=SECRET, **settings)
    hetang(env, "migrate")
    hetang(env, "user", "add", "root", "--role", "admin", "--password-stdin", stdin="x" * 16)
    return root, hetang(env, "token", "create", "root").strip()


def workers_server(database: str, root: Path, workers: int = 2) -> Server:
    """`hetang serve --workers` on this PostgreSQL database and the tests' Redis, started (the
    test is skipped without Redis); its admin token is `admin_token`."""
    redis = os.environ.get(REDIS_ENV)
    if not redis:
        pytest.skip(f"{REDIS_ENV} is not set")
    settings = {"HETANG_DATABASE_URL": database, "HETANG_REDIS_URL": redis}
    _, token = server_template(root / "template", **settings)
    server = Server(root / "server", token, settings=settings, workers=workers)
    server.data_dir.mkdir()
    return server.start()


def new_server(template: tuple[Path, str], data_dir: Path) -> Server:
    """A started server on a copy of the template."""
    shutil.copytree(template[0], data_dir)
    return Server(data_dir, template[1]).start()


def agent_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `hetang-agent` to completion."""
    return subprocess.run(
        [str(BIN / "hetang-agent"), *args],
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Agent:
    """`hetang-agent run` with its scanner on a pipe; collects what it prints."""

    def __init__(
        self,
        data_dir: Path,
        server_url: str,
        token: str,
        *,
        scanner: str | None = "stdin",
        ice_hosts: str = "127.0.0.1",
    ) -> None:
        self.data_dir, self.server_url, self.token = data_dir, server_url, token
        self.ui_port = free_port()
        self.lines: list[str] = []
        # The token goes by environment, as on a venue PC: never in the command line.
        args = [str(BIN / "hetang-agent"), "run", "--server", server_url]
        args += ["--data-dir", str(data_dir), "--ui-port", str(self.ui_port)]
        args += ["--ice-hosts", ice_hosts]
        if scanner is not None:
            args += ["--scanner", scanner]
        data_dir.mkdir(parents=True, exist_ok=True)
        log = (data_dir / "agent.log").open("ab")
        self.process = subprocess.Popen(
            args,
            env=clean_env(HETANG_AGENT_TOKEN=token),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        wait_until(lambda: self.status() is not None, "the agent's staff page")

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def ui(self) -> str:
        """The staff page's base URL."""
        return f"http://127.0.0.1:{self.ui_port}"

    def scan(self, *codes: str) -> None:
        """Type codes on the scanner, one per line."""
        assert self.process.stdin is not None
        self.process.stdin.write("".join(code + "\n" for code in codes).encode())
        self.process.stdin.flush()

    def scan_mode(self, kind: str) -> None:
        """Switch what a scan means (in: 签到, out: 签退) on the staff page, as staff do."""
        _, html = http_json("GET", self.ui + "/")
        token = str(html).split('name="csrf-token" content="')[1].split('"')[0]
        status, _ = http_json(
            "POST", self.ui + "/scan-kind", {"kind": kind}, {"X-CSRF-Token": token}
        )
        assert status == 200, status

    def close_scanner(self) -> None:
        """The scanner's input ends (EOF)."""
        assert self.process.stdin is not None
        self.process.stdin.close()

    def status(self) -> dict[str, Any] | None:
        """GET /status.json, or None when the page does not answer."""
        assert self.process.poll() is None, f"the agent exited with {self.process.returncode}"
        try:
            status, body = http_json("GET", self.ui + "/status.json", timeout=5)
        except OSError:
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def frames_decoded(self) -> int:
        """Frames decoded so far in the current reception of a broadcast (0 when idle)."""
        stream = (self.status() or {}).get("stream") or {}
        return int(stream.get("frames_decoded_now") or 0)

    def printed(self, text: str) -> list[str]:
        """Lines printed so far that contain the text."""
        return [line for line in list(self.lines) if text in line]

    def journal(self) -> list[tuple[str, str, str | None]]:
        """(event_id, state, reason) of every journaled check-in, read from the agent's file."""
        db = sqlite3.connect(self.data_dir / "agent.sqlite3", timeout=30)
        try:
            rows = db.execute(
                "SELECT event_id, state, reason FROM outbox WHERE kind = 'checkin' ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
        return [(str(a), str(b), c) for a, b, c in rows]

    def schedule(self) -> dict[str, list[str]]:
        """The schedule the agent keeps on disk: each session's id and its roster's numbers."""
        db = sqlite3.connect(self.data_dir / "agent.sqlite3", timeout=30)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schedule'").fetchone()
        finally:
            db.close()
        sessions = json.loads(row[0])["sessions"] if row else []
        return {s["id"]: [m["member_no"] for m in s["roster"]] for s in sessions}

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop it with a signal; answers the exit status."""
        code = stop_process(self.process, sig)
        self._reader.join(timeout=DEADLINE_S)
        return code


class Agents:
    """Starts real agents; whatever still runs at the end of the test is stopped."""

    def __init__(self) -> None:
        self.started: list[Agent] = []

    def start(
        self, data_dir: Path, server_url: str, token: str, ice_hosts: str = "127.0.0.1"
    ) -> Agent:
        """A running agent whose staff page answers (its ICE on `ice_hosts`)."""
        agent = Agent(data_dir, server_url, token, ice_hosts=ice_hosts)
        self.started.append(agent)
        return agent


@dataclass
class Exchange:
    """One request the network double saw, and what it answered."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    answer_headers: dict[str, str]


class FlakyNetwork:
    """A tiny HTTP proxy in front of the server that can answer with canned failures.

    A test double for the network, not for our code: `script` maps a path to the answers to give
    (status, headers) before forwarding resumes.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.seen: list[Exchange] = []
        self._lock = threading.Lock()
        network = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                network._handle(self)

            def do_POST(self) -> None:
                network._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=DEADLINE_S)

    def exchanges(self, path_end: str) -> list[Exchange]:
        """What was seen for paths ending so."""
        with self._lock:
            return [e for e in self.seen if e.path.endswith(path_end)]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        with self._lock:
            canned = None
            for path, answers in self.script.items():
                if handler.path.endswith(path) and answers:
                    canned = answers.pop(0)
                    break
        if canned is not None:
            status, extra = canned
            body = json.dumps({"error": {"code": "test", "message": "canned"}}).encode()
            answer_headers = {"Content-Type": "application/json", **extra}
        else:
            status, answer_headers, body = self._forward(
                handler.command, handler.path, headers, raw
            )
        with self._lock:
            self.seen.append(
                Exchange(
                    time.monotonic(),
                    handler.command,
                    handler.path,
                    headers,
                    json.loads(raw) if raw else None,
                    status,
                    answer_headers,
                )
            )
        try:
            handler.send_response(status)
            for name, value in answer_headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the agent went away mid-answer

    def _forward(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(  # noqa: S310  (the upstream is our server)
            self.upstream + path, data=raw or None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, found, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, found, body = error.code, error.headers, error.read()
            error.close()
        except OSError:
            return 502, {}, b""
        keep = ("Content-Type", "ETag", "Retry-After")
        return status, {k: found[k] for k in keep if found.get(k)}, body


def stored_checkins(server: Server, session_id: str) -> list[tuple[str, str, str, str]]:
    """(event_id, member_no, kind, source) of the session's check-ins in the server's database."""
    rows = server.query(
        "SELECT c.event_id, m.member_no, c.kind, c.source FROM checkins c "
        "JOIN members m ON m.id = c.member_id "
        "JOIN training_sessions s ON s.id = c.session_id WHERE s.public_id = ?",
        session_id,
    )
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def quarantined(server: Server) -> list[tuple[str, str]]:
    """(event_id, reason) of every quarantined check-in."""
    rows = server.query("SELECT event_id, reason FROM quarantined_checkins")
    return [(str(a), str(b)) for a, b in rows]


def settled(agent: Agent, count: int) -> list[tuple[str, str, str | None]]:
    """Wait until the agent's journal holds `count` check-ins, none pending."""

    def done() -> list[tuple[str, str, str | None]] | None:
        rows = agent.journal()
        if len(rows) == count and all(state != "pending" for _, state, _ in rows):
            return rows
        return None

    return wait_until(done, f"{count} check-ins settled", OUTAGE_DEADLINE_S)


def schedule_of(agent: Agent) -> dict[str, Any]:
    """Wait until the agent has the session of the moment from the server."""
    return wait_until(
        lambda: (agent.status() or {}).get("session"), "the schedule", OUTAGE_DEADLINE_S
    )
