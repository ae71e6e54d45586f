"""Secrets other users of the machine must not read: the venue token never on a command line
(`ps`), the agent's journal and the server's database private to their user."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_run import start_agent
from tests.support.procs import (
    BIN,
    SECRET,
    Server,
    agent_cli,
    clean_env,
    free_port,
    hetang,
    stop_process,
    wait_until,
)

TOKEN = "hv_" + "s" * 40
JOURNAL = "agent.sqlite3"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual umask (022), which leaves new files readable by everyone unless a program
    chooses otherwise: what these tests check is that the programs choose."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private_files(directory: Path, prefix: str) -> dict[str, int]:
    """Mode of every file whose name starts so (the database and its -wal and -shm)."""
    return {p.name: _mode(p) for p in directory.iterdir() if p.name.startswith(prefix)}


def _nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"  # no server: the agent works offline


# --- the venue token ---------------------------------------------------------------------------


def test_a_token_from_the_environment_is_not_on_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "agent"  # the agent makes it
    agent = start_agent(
        tmp_path / "agent.log",
        "--data-dir",
        str(data_dir),
        HETANG_AGENT_SERVER=_nowhere(),
        HETANG_AGENT_TOKEN=TOKEN,
    )
    try:
        assert not [arg for arg in agent.cmdline() if "hv_" in arg]
        # Its journal (rosters with names and card codes) and its directory are its user's alone,
        # the write-ahead log and shared memory files too.
        assert _mode(data_dir) == 0o700
        files = _private_files(data_dir, JOURNAL)
        assert JOURNAL in files and f"{JOURNAL}-wal" in files, files
        assert set(files.values()) == {0o600}, files
        assert "visible to other users" not in agent.output()
    finally:
        assert agent.stop() == 0


def test_a_token_file_is_read_and_must_be_private(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    server = ["--server", _nowhere(), "--data-dir", str(tmp_path / "data")]
    refused = agent_cli("run", *server, "--token-file", str(token_file))
    assert refused.returncode == 2, refused.stderr
    assert f"--token-file: {token_file} can be read by other users" in refused.stderr
    assert f"chmod 600 {token_file}" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = agent_cli("run", *server, "--token-file", str(tmp_path / "none"))
    assert missing.returncode == 2 and "--token-file" in missing.stderr
    assert "Traceback" not in missing.stderr
    token_file.chmod(0o600)
    both = agent_cli("run", *server, "--token-file", str(token_file), "--token", TOKEN)
    assert both.returncode == 2 and "either --token or --token-file" in both.stderr
    agent = start_agent(tmp_path / "agent.log", *server, "--token-file", str(token_file))
    try:
        assert not [arg for arg in agent.cmdline() if "hv_" in arg]
        assert "visible to other users" not in agent.output()
    finally:
        assert agent.stop() == 0


def test_a_token_flag_still_works_but_warns(tmp_path: Path) -> None:
    agent = start_agent(
        tmp_path / "agent.log",
        "--server",
        _nowhere(),
        "--token",
        TOKEN,
        "--data-dir",
        str(tmp_path / "data"),
    )
    try:
        assert agent.process.poll() is None
        printed = agent.output()
        assert "--token is visible to other users" in printed
        assert "HETANG_AGENT_TOKEN" in printed and "--token-file" in printed
    finally:
        assert agent.stop() == 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _read(path: str) -> list[str] | None:
    try:
        return Path(path).read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return None


@pytest.mark.slow
def test_demo_agents_get_their_tokens_by_environment(server: Server, tmp_path: Path) -> None:
    server.api(
        "POST",
        "organizations",
        {"code": "cz", "name": "滁州市", "level": "city", "parent_code": None},
    )
    server.api("POST", "venues", {"code": "branch", "name": "分会场", "org_code": "cz"})
    env = clean_env(
        HETANG_DATA_DIR=str(server.data_dir),
        HETANG_SECRET_KEY=server.env["HETANG_SECRET_KEY"],
        HETANG_PORT=str(server.port),
    )
    with (tmp_path / "demo-agents.out").open("wb") as sink:
        demo = subprocess.Popen(
            [str(BIN / "hetang"), "--log-level", "WARNING", "demo-agents", "--count", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:

        def agent_seen() -> tuple[list[str], list[str]] | None:
            for pid in _children(demo.pid):
                cmdline, environ = _read(f"/proc/{pid}/cmdline"), _read(f"/proc/{pid}/environ")
                if cmdline and environ and any("hetang-agent" in arg for arg in cmdline):
                    return cmdline, environ
            return None

        cmdline, environ = wait_until(agent_seen, "the demo agent's process", 60)
        assert "run" in cmdline
        assert not [arg for arg in cmdline if "hv_" in arg], cmdline
        tokens = [v for v in environ if v.startswith("HETANG_AGENT_TOKEN=hv_")]
        assert len(tokens) == 1
        # The demo's agent keeps its journal private too.
        data_dir = server.data_dir / "agents" / "branch"
        wait_until(lambda: (data_dir / JOURNAL).exists(), "the demo agent's journal")
        assert _mode(data_dir) == 0o700
        assert set(_private_files(data_dir, JOURNAL).values()) == {0o600}
    finally:
        assert stop_process(demo) == 0


# --- the server's data dir and database --------------------------------------------------------


def test_the_server_makes_its_data_dir_and_database_private(tmp_path: Path) -> None:
    # The data dir made while keeping the generated secret key.
    generated = tmp_path / "generated" / "var"
    hetang(clean_env(HETANG_DATA_DIR=str(generated)), "migrate")
    assert _mode(generated) == 0o700
    assert _mode(generated / "secret_key") == 0o600
    assert _private_files(generated, "hetang.sqlite3") == {"hetang.sqlite3": 0o600}
    # The data dir made for the database alone (the secret key is given).
    given = tmp_path / "given" / "var"
    hetang(clean_env(HETANG_DATA_DIR=str(given), HETANG_SECRET_KEY=SECRET), "migrate")
    assert _mode(given) == 0o700
    assert _private_files(given, "hetang.sqlite3") == {"hetang.sqlite3": 0o600}
    # While the server runs, its write-ahead log and shared memory are private too.
    running = Server(given, admin_token="").start()
    try:
        files = _private_files(given, "hetang.sqlite3")
        assert "hetang.sqlite3-wal" in files, files
        assert set(files.values()) == {0o600}, files
    finally:
        running.stop()
