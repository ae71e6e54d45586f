"""hetang-agent on its own: settings and exit codes, the journal under kill -9, the scanner pipe,
paper sheets, `status`, and the staff page of a real agent process (no server needed)."""

from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import BIN, Agent, agent_cli, clean_env, free_port, http_json, wait_until
from venue_agent.config import AgentConfig, ConfigError, ExitCode
from venue_agent.outbox import NewEvent, Outbox
from venue_agent.schedule import ScheduleBook
from venue_agent.sheet_import import SheetRejected, parse_sheet, sheet_events

TOKEN = "hv_" + "t" * 40
SHANGHAI = "+08:00"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return agent_cli(*args, env=clean_env(**env))


# --- settings and exit codes -----------------------------------------------------------------


def test_config_reads_flags_over_variables(tmp_path: Path) -> None:
    env = {
        "HETANG_AGENT_SERVER": "http://env.example:8080/",
        "HETANG_AGENT_TOKEN": TOKEN,
        "HETANG_AGENT_DATA_DIR": str(tmp_path / "env"),
        "HETANG_AGENT_UI_PORT": "9000",
    }
    config = AgentConfig.load({"--server": "https://flag.example", "--ui-port": None}, env)
    assert config.server.url == "https://flag.example"
    assert config.server.token == TOKEN
    assert config.data_dir == tmp_path / "env" and config.data_dir.is_dir()
    assert config.ui_port == 9000
    assert config.scanner is None  # no scanner unless asked for
    # No ICE server unless one is given (never a public one), every host address found.
    assert config.ice.servers == () and config.ice.hosts == ()


def test_config_reads_the_ice_settings(tmp_path: Path) -> None:
    env = {
        "HETANG_AGENT_ICE_HOSTS": " 127.0.0.1, ::1 ",
        "HETANG_AGENT_ICE_SERVERS": "stun:ignored.example",
        "HETANG_AGENT_TURN_USERNAME": "venue",
        "HETANG_AGENT_TURN_CREDENTIAL": "secret",
    }
    flags: dict[str, str | None] = {
        "--server": "http://x",
        "--token": TOKEN,
        "--data-dir": str(tmp_path),
        "--ice-servers": "stun:stun.example:3478,turn:turn.example:3478",
    }
    ice = AgentConfig.load(flags, env).ice
    assert ice.hosts == ("127.0.0.1", "::1")
    assert ice.servers == ("stun:stun.example:3478", "turn:turn.example:3478")
    assert (ice.username, ice.credential) == ("venue", "secret")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"--token": TOKEN}, "--server / HETANG_AGENT_SERVER"),
        ({"--server": "ftp://x", "--token": TOKEN}, "--server / HETANG_AGENT_SERVER"),
        ({"--server": "http://x"}, "--token / HETANG_AGENT_TOKEN"),
        ({"--server": "http://x", "--token": "hu_user"}, "--token / HETANG_AGENT_TOKEN"),
        ({"--server": "http://x", "--token": TOKEN, "--ui-port": "80a"}, "--ui-port"),
        ({"--server": "http://x", "--token": TOKEN, "--ui-port": "70000"}, "--ui-port"),
        (
            {"--server": "http://x", "--token": TOKEN, "--ice-hosts": "127.0.0.1,localhost"},
            "--ice-hosts / HETANG_AGENT_ICE_HOSTS",
        ),
        (
            {"--server": "http://x", "--token": TOKEN, "--ice-servers": "stun.example:3478"},
            "--ice-servers / HETANG_AGENT_ICE_SERVERS",
        ),
    ],
)
def test_config_names_the_bad_setting(
    tmp_path: Path, flags: dict[str, str | None], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        AgentConfig.load({**flags, "--data-dir": str(tmp_path)}, {})
    assert named in str(raised.value)
    assert raised.value.exit_code == ExitCode.CONFIG


def test_cli_exit_codes_without_tracebacks(tmp_path: Path) -> None:
    server = ["--server", "http://127.0.0.1:9", "--token", TOKEN]
    cases = [
        (["run", "--token", TOKEN, "--data-dir", str(tmp_path)], 2, "HETANG_AGENT_SERVER"),
        (["run", *server, "--data-dir", str(tmp_path), "--ui-port", "x"], 2, "--ui-port"),
    ]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cases.append((["run", *server, "--data-dir", str(blocker / "sub")], 3, "--data-dir"))
    cases.append(
        (
            ["run", *server, "--data-dir", str(tmp_path), "--scanner", str(tmp_path / "none")],
            5,
            "--scanner",
        )
    )
    cases.append((["status", "--data-dir", str(tmp_path / "empty")], 3, "no agent journal"))
    cases.append(
        (["run", *server, "--data-dir", str(tmp_path), "--ice-hosts", "x"], 2, "--ice-hosts")
    )
    for args, code, named in cases:
        result = _run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert named in result.stderr
        assert "Traceback" not in result.stderr


def test_variables_configure_the_cli(tmp_path: Path) -> None:
    result = _run("run", HETANG_AGENT_TOKEN=TOKEN, HETANG_AGENT_SERVER="nonsense")
    assert result.returncode == 2 and "HETANG_AGENT_SERVER" in result.stderr


def test_a_busy_ui_port_exits_4(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(
            "run",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
            "--data-dir",
            str(tmp_path),
            "--ui-port",
            str(port),
        )
    assert result.returncode == 4, result.stderr
    assert f"port {port}" in result.stderr and "Traceback" not in result.stderr


# --- the journal -------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, uuid
    from pathlib import Path
    from venue_agent.outbox import NewEvent, Outbox
    outbox = Outbox.open(Path(sys.argv[1]))
    for n in range(100000):
        event_id = str(uuid.uuid4())
        payload = {"event_id": event_id, "session_id": "s1", "member_no": f"M{n}",
                   "kind": "in", "at": "2024-05-01T09:00:00+08:00", "source": "scanner"}
        outbox.add([NewEvent(event_id, "checkin", "s1", payload, "2024-05-01T09:00:00+08:00")])
        print(event_id, flush=True)
    """
)


def test_every_committed_event_survives_kill_9(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert writer.stdout is not None
    committed = [writer.stdout.readline().strip() for _ in range(300)]
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    outbox = Outbox.open(tmp_path)
    try:
        stored = [event.event_id for event in outbox.pending("checkin", 1_000_000)]
    finally:
        outbox.close()
    assert set(committed) <= set(stored)
    assert len(stored) == len(set(stored))
    # Whatever was written after the last printed id is whole, in order, and nothing else.
    assert stored[: len(committed)] == committed
    db = sqlite3.connect(tmp_path / "agent.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_an_answer_once_recorded_is_final(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path)
    try:
        events = [
            NewEvent(f"e{n}", "checkin", "s1", {"event_id": f"e{n}"}, "2024-05-01T09:00:00Z")
            for n in range(3)
        ]
        assert outbox.add(events) == 3
        assert outbox.add(events[:1]) == 0  # the same event_id is journaled once
        outbox.finish([("e0", "rejected", "unknown_member"), ("e1", "sent", None)], "now")
        outbox.finish([("e0", "sent", None), ("e1", "rejected", "x")], "later")
        assert [e.event_id for e in outbox.pending("checkin", 10)] == ["e2"]
        assert [(e.event_id, e.reason) for e in outbox.rejected()] == [("e0", "unknown_member")]
        assert outbox.counts().sent == 1
        assert outbox.pending("sample", 10) == []  # kinds are kept apart
    finally:
        outbox.close()


# --- paper sheets ------------------------------------------------------------------------------


def test_sheet_rows_and_times() -> None:
    sheet = (
        "党员编号,卡号,类型,签到时间\n"
        "M001,,签到,2024-05-01 09:05\n"
        ",C002,out,2024-05-01T11:58:00Z\n"
        "M003,C003,,2024/05/01 9:07:30\n"
        "\n"
    ).encode("gb18030")
    rows = parse_sheet(sheet)
    assert [(r.code_field, r.member_code, r.kind) for r in rows] == [
        ("member_no", "M001", "in"),
        ("card_code", "C002", "out"),
        ("member_no", "M003", "in"),
    ]
    assert rows[0].at.isoformat() == "2024-05-01T09:05:00" + SHANGHAI
    assert rows[1].at.astimezone(UTC) == datetime(2024, 5, 1, 11, 58, tzinfo=UTC)
    assert rows[2].at.isoformat() == "2024-05-01T09:07:30" + SHANGHAI
    events = sheet_events("s1", rows, "now")
    assert events[0].payload == {
        "event_id": events[0].event_id,
        "session_id": "s1",
        "member_no": "M001",
        "kind": "in",
        "at": "2024-05-01T09:05:00+08:00",
        "source": "import",
    }
    assert [e.event_id for e in sheet_events("s1", rows, "later")] == [e.event_id for e in events]


def test_a_bad_sheet_lists_every_bad_line() -> None:
    with pytest.raises(SheetRejected) as raised:
        parse_sheet(b"member_no,kind,at\nM1,in,2024-05-01 09:00\n,in,2024-05-01 09:00\nM3,sit,\n")
    assert [p.line for p in raised.value.problems] == [3, 4]
    assert "类型" in raised.value.problems[1].message and "时间" in raised.value.problems[1].message
    with pytest.raises(SheetRejected):
        parse_sheet(b"name,at\nx,2024-05-01 09:00\n")


def _seed_schedule(data_dir: Path, starts: datetime, ends: datetime) -> str:
    outbox = Outbox.open(data_dir)
    try:
        raw = {
            "sessions": [
                {
                    "id": "s1",
                    "title": "党的二十大精神专题培训",
                    "topic_code": "T1",
                    "starts_at": starts.isoformat(),
                    "ends_at": ends.isoformat(),
                    "state": "scheduled",
                    "role": "branch",
                    "roster": [
                        {"member_no": "M001", "name": "张三", "card_code": "C001"},
                        {"member_no": "M002", "name": "李四", "card_code": None},
                    ],
                }
            ]
        }
        ScheduleBook().replace(outbox, raw, '"v1"', "2024-05-01T00:00:00Z")
    finally:
        outbox.close()
    return "s1"


def test_import_and_status_commands(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _seed_schedule(tmp_path, now + timedelta(hours=1), now + timedelta(hours=3))
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("member_no,kind,at\nM001,in,2024-05-01 09:00\nM777,in,2024-05-01 09:01\n")
    first = _run("import", str(sheet), "--session", "s1", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "已加入上传队列 2 条" in first.stdout
    assert "M777 不在名单中" in first.stderr
    again = _run("import", str(sheet), "--session", "s1", "--data-dir", str(tmp_path))
    assert "已加入上传队列 0 条" in again.stdout and "此前已导入 2 条" in again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("member_no,at\nM001,yesterday\n")
    refused = _run("import", str(bad), "--session", "s1", "--data-dir", str(tmp_path))
    assert refused.returncode == 1 and "第 2 行" in refused.stderr
    status = _run("status", "--data-dir", str(tmp_path))
    assert status.returncode == 0, status.stderr
    assert "queue depth:      2" in status.stdout
    assert "党的二十大精神专题培训 (s1)" in status.stdout
    assert "rejected:          0" in status.stdout
    assert "从未 never" in status.stdout
    data = _json_status(tmp_path)
    assert data["queue_depth"] == 2 and data["rejected_count"] == 0
    assert data["next_session"]["id"] == "s1" and data["session"] is None
    assert data["last_sync"] is None
    assert data["stream"] == {"state": "idle", "session_id": None}
    assert "未接收 idle" in status.stdout
    # The newest stream sample in the journal is what `status` says of the stream.
    outbox = Outbox.open(tmp_path)
    try:
        sample = {
            "at": datetime.now(UTC).isoformat(),
            "state": "degraded",
            "bitrate_kbps": 812.5,
            "fps": 12.0,
            "loss_pct": 0.5,
            "jitter_ms": 4.0,
            "freezes": 1,
            "frames_decoded": 600,
        }
        outbox.add([NewEvent("sample-1", "sample", "s1", sample, sample["at"])])
    finally:
        outbox.close()
    stream = _json_status(tmp_path)["stream"]
    assert stream == {**sample, "session_id": "s1"}
    line = _run("status", "--data-dir", str(tmp_path)).stdout
    assert "较差 degraded · 12.0 fps · 812.5 kbps" in line


def _json_status(data_dir: Path) -> Any:
    import json

    result = _run("status", "--data-dir", str(data_dir), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- a real agent, offline, with its scanner on a pipe and its staff page ----------------------


@pytest.fixture
def offline_agent(tmp_path: Path) -> Any:
    """An agent whose server does not answer, working from a cached schedule."""
    now = datetime.now(UTC)
    _seed_schedule(tmp_path, now - timedelta(minutes=10), now + timedelta(hours=2))
    agent = Agent(tmp_path, f"http://127.0.0.1:{free_port()}", TOKEN)
    yield agent
    agent.stop()


def test_scans_are_journaled_offline_and_eof_does_not_stop_the_agent(
    offline_agent: Agent, tmp_path: Path
) -> None:
    agent = offline_agent
    agent.scan("C001", "  M002\r", "NOBODY")
    wait_until(lambda: len(agent.printed("签到")) + len(agent.printed("NOBODY")) >= 3, "3 scans")
    assert agent.printed("签到成功：张三（M001）")
    assert agent.printed("签到成功：李四（M002）")
    unknown = agent.printed("NOBODY")
    assert unknown[0].startswith("\a✗") and "不在本场次名单中" in unknown[0]
    agent.close_scanner()  # EOF on stdin
    status = wait_until(agent.status, "the staff page after EOF")
    assert status["queue_depth"] == 3  # the unknown code is kept, to be sent
    assert status["online"] is False and status["problem"]
    assert {p["code"] for p in status["present"]} == {"M001", "M002", "NOBODY"}
    assert [state for _, state, _ in agent.journal()] == ["pending"] * 3
    assert _json_status(tmp_path)["queue_depth"] == 3  # `status` reads while `run` runs
    assert agent.stop() == 0  # SIGTERM: a clean exit


def _open_for_writing(fifo: Path) -> int | None:
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:  # nobody reads it yet
            return None
        raise


def test_a_scanner_device_that_goes_away_is_read_again(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _seed_schedule(tmp_path, now - timedelta(minutes=10), now + timedelta(hours=2))
    device = tmp_path / "scanner"
    os.mkfifo(device)
    agent = Agent(tmp_path, f"http://127.0.0.1:{free_port()}", TOKEN, scanner=str(device))
    try:
        for code, name in (("C001", "张三"), ("M002", "李四")):
            fd = wait_until(lambda: _open_for_writing(device), "the agent to open the device")
            os.write(fd, code.encode() + b"\r")
            os.close(fd)  # unplugged: the agent sees the end of its input
            wait_until(functools.partial(agent.printed, f"签到成功：{name}"), f"{code} scanned")
        assert wait_until(agent.status, "the staff page")["queue_depth"] == 2
    finally:
        assert agent.stop() == 0


def test_staff_page(offline_agent: Agent) -> None:
    agent = offline_agent
    status, html = http_json("GET", agent.ui + "/")
    assert status == 200 and "分会场签到" in html
    token = html.split('name="csrf-token" content="')[1].split('"')[0]
    for path in ("/app.js", "/app.css"):
        assert http_json("GET", agent.ui + path)[0] == 200
    _, roster = http_json("GET", agent.ui + "/roster?q=%E5%BC%A0")  # 张
    assert [m["member_no"] for m in roster["members"]] == ["M001"]
    body = {"session_id": "s1", "code": "M002", "kind": "in", "field": "member_no"}
    assert http_json("POST", agent.ui + "/checkins", body)[0] == 403  # no CSRF token
    forged = {"X-CSRF-Token": "guess"}
    assert http_json("POST", agent.ui + "/checkins", body, forged)[0] == 403
    rebound = {"Host": "attacker.example"}
    assert http_json("GET", agent.ui + "/status.json", headers=rebound)[0] == 403
    good = {"X-CSRF-Token": token}
    status, outcome = http_json("POST", agent.ui + "/checkins", body, good)
    assert status == 200 and outcome["queued"] and outcome["known"]
    assert "李四" in outcome["message"]
    out = {**body, "kind": "out"}
    assert http_json("POST", agent.ui + "/checkins", out, good)[1]["queued"]
    walk_in = {"session_id": "s1", "code": "M900", "kind": "in", "field": "member_no"}
    assert http_json("POST", agent.ui + "/checkins", walk_in, good)[1]["known"] is False
    closed = {**body, "session_id": "elsewhere"}
    assert http_json("POST", agent.ui + "/checkins", closed, good)[1]["queued"] is False
    zhang = {**body, "code": "M001"}
    assert http_json("POST", agent.ui + "/checkins", zhang, good)[1]["redundant"] is False
    again = http_json("POST", agent.ui + "/checkins", zhang, good)[1]
    assert again["queued"] and again["redundant"] and again["message"].startswith("已在场：张三")
    assert http_json("POST", agent.ui + "/scan-kind", {"kind": "out"}, good)[0] == 200
    agent.scan("C001")
    wait_until(lambda: agent.printed("签退成功：张三"), "a scan in check-out mode")
    agent.scan("C001")  # out again: a warning (and a beep), never a second 签退成功
    line = wait_until(lambda: agent.printed("未在场：张三"), "a check-out of someone out")[0]
    assert line.startswith("\a✗") and len(agent.printed("签退成功：张三")) == 1
    data = wait_until(agent.status, "status.json")
    assert data["scan_kind"] == "out"
    assert data["session"]["id"] == "s1" and data["session"]["roster_size"] == 2
    assert [p["code"] for p in data["present"]] == ["M900"]
    assert data["queue_depth"] == 7  # repeats are journaled too: the server ignores them
    assert data["stream"] == {"state": "idle", "session_id": None}


def test_room_screen_page(offline_agent: Agent) -> None:
    agent = offline_agent
    status, html = http_json("GET", agent.ui + "/screen")
    assert status == 200 and "等待主会场开始直播" in html
    token = html.split('name="csrf-token" content="')[1].split('"')[0]
    for path in ("/screen.js", "/screen.css"):
        assert http_json("GET", agent.ui + path)[0] == 200
    status, state = http_json("GET", agent.ui + "/screen/state")
    assert status == 200 and state == {"live": False, "state": "idle", "title": None}
    offer = {"sdp": "v=0\r\n", "type": "offer"}
    assert http_json("POST", agent.ui + "/screen/offer", offer)[0] == 403  # no CSRF token
    rebound = {"Host": "attacker.example", "X-CSRF-Token": token}
    assert http_json("POST", agent.ui + "/screen/offer", offer, rebound)[0] == 403
    good = {"X-CSRF-Token": token}
    status, answer = http_json("POST", agent.ui + "/screen/offer", offer, good)
    assert status == 409 and answer["error"]["code"] == "conflict"  # nothing is received
    status, answer = http_json("POST", agent.ui + "/screen/offer", {"sdp": 1}, good)
    assert status == 422 and answer["error"]["code"] == "invalid"


def test_a_scan_with_no_session_is_kept_as_refused(tmp_path: Path) -> None:
    agent = Agent(tmp_path, f"http://127.0.0.1:{free_port()}", TOKEN)
    try:
        agent.scan("C001")
        line = wait_until(lambda: agent.printed("没有可签到的场次"), "the refusal")[0]
        assert line.startswith("\a✗")
        data = wait_until(agent.status, "status.json")
        assert data["queue_depth"] == 0 and data["rejected_count"] == 1
        assert data["rejected"][0]["reason"] == "no_session"
    finally:
        assert agent.stop() == 0


def test_version() -> None:
    result = subprocess.run(
        [str(BIN / "hetang-agent"), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("hetang-agent ")
