"""`hetang-agent`: run the agent, import paper sheets, show the queue; an exit code per failure."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import aiohttp

from venue_agent import __version__, clock
from venue_agent.client import ServerClient
from venue_agent.config import (
    DATA_DIR,
    AgentConfig,
    ConfigError,
    ExitCode,
    ServerAccess,
    data_dir_path,
    optional_server_access,
    writable_data_dir,
)
from venue_agent.link import Link
from venue_agent.outbox import DB_NAME, REJECTED, Outbox, OutboxError
from venue_agent.schedule import ScheduleBook
from venue_agent.sheet_import import SheetRejected, parse_sheet, sheet_events
from venue_agent.status import snapshot
from venue_agent.uploader import Uploader

log = logging.getLogger("venue_agent")
SHOWN_TO_PS = "visible to other users of this computer (ps); use HETANG_AGENT_TOKEN or --token-file"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hetang-agent",
        description="Hetang (合堂) venue agent",
        epilog="exit codes: 0 ok, 1 bad import file, 2 bad configuration, "
        "3 data directory unusable, 4 staff-page port busy, 5 scanner device cannot be opened",
    )
    parser.add_argument("--version", action="version", version=f"hetang-agent {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the agent: schedule, check-ins, staff page")
    run.add_argument("--server", help="the server's address (HETANG_AGENT_SERVER)")
    run.add_argument(
        "--token-file",
        help="a file (mode 600) holding the venue's agent token, hv_…; or HETANG_AGENT_TOKEN",
    )
    run.add_argument("--token", help=f"the token itself: {SHOWN_TO_PS}")
    run.add_argument("--data-dir", help="where the journal lives (HETANG_AGENT_DATA_DIR)")
    run.add_argument("--ui-port", help="the staff page's port (HETANG_AGENT_UI_PORT, 8765)")
    run.add_argument("--scanner", help="'stdin' or a device path (HETANG_AGENT_SCANNER)")
    run.add_argument(
        "--ice-hosts",
        help="IP addresses to offer for the live stream, comma-separated; empty: every address "
        "found (HETANG_AGENT_ICE_HOSTS)",
    )
    run.add_argument(
        "--ice-servers",
        help="stun:/turn: URLs, comma-separated; empty: none (HETANG_AGENT_ICE_SERVERS)",
    )
    run.add_argument(
        "--staff-pin-file",
        help="a file (mode 600) holding the PIN the staff page asks for (HETANG_AGENT_STAFF_PIN "
        "holds the PIN itself); none: every local user may use the staff page",
    )
    sheet = sub.add_parser("import", help="queue a paper sign-in sheet (CSV) for upload")
    sheet.add_argument("file", type=Path, metavar="FILE.csv")
    sheet.add_argument("--session", required=True, help="the session id the sheet belongs to")
    sheet.add_argument("--data-dir")
    sheet.add_argument("--server", help="upload now (else a running agent uploads)")
    sheet.add_argument("--token-file", help="a file holding the venue's token")
    sheet.add_argument("--token", help=f"the token itself: {SHOWN_TO_PS}")
    status = sub.add_parser("status", help="queue depth, last sync, next session, rejected")
    status.add_argument("--data-dir")
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, str | None]:
    names = (
        "server",
        "token",
        "token_file",
        "data_dir",
        "ui_port",
        "scanner",
        "ice_hosts",
        "ice_servers",
        "staff_pin_file",
    )
    return {"--" + name.replace("_", "-"): getattr(args, name, None) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hetang-agent` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aioice logs every candidate pair at INFO: more than an operator wants to read.
    logging.getLogger("aioice").setLevel(max(logging.WARNING, logging.getLogger().level))
    commands = {"run": run, "import": import_sheet, "status": status}
    if getattr(args, "token", None) is not None:
        print(f"hetang-agent: warning: --token is {SHOWN_TO_PS}", file=sys.stderr)
    try:
        return int(commands[args.command](args, os.environ))
    except ConfigError as error:
        print(f"hetang-agent: {error}", file=sys.stderr)
        return int(error.exit_code)
    except OutboxError as error:
        print(f"hetang-agent: {DATA_DIR.label}: {error}", file=sys.stderr)
        return int(ExitCode.DATA_DIR)
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    """hetang-agent run"""
    from venue_agent.runner import run_agent

    config = AgentConfig.load(_flags(args), environ)
    outbox = Outbox.open(config.data_dir)
    try:
        asyncio.run(run_agent(config, outbox))
    finally:
        outbox.close()
    return ExitCode.OK


def import_sheet(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    """hetang-agent import FILE.csv --session ID"""
    flags = _flags(args)
    server = optional_server_access(flags, environ)
    session_public_id = str(args.session).strip()
    if not 0 < len(session_public_id) <= 32:
        raise ConfigError("--session must be a session id (1 to 32 characters)")
    try:
        data = args.file.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror}") from None
    outbox = Outbox.open(writable_data_dir(flags, environ))
    try:
        book = ScheduleBook.load(outbox)
        try:
            rows = parse_sheet(data, book.zone)  # a time without offset: the server's zone
        except SheetRejected as rejected:
            _print_problems(args.file, rejected)
            return ExitCode.FAILED
        session = book.get(session_public_id)
        if session is None:
            print(f"注意：本机日程中没有场次 {session_public_id}，由服务器核验", file=sys.stderr)
        else:
            for row in rows:
                if session.find(row.member_code) is None:
                    print(f"注意：第 {row.line} 行 {row.member_code} 不在名单中", file=sys.stderr)
        events = sheet_events(session_public_id, rows, clock.now_iso())
        added = outbox.add(events)
        print(f"已加入上传队列 {added} 条；此前已导入 {len(events) - added} 条")
        if server is None:
            print("运行中的 hetang-agent 会自动上传（或加 --server 与 --token 立即上传）")
            return ExitCode.OK
        delivered = asyncio.run(_upload(server, outbox))
        settled = outbox.get([event.event_id for event in events])
        for event in settled:
            if event.state == REJECTED:
                member_code = event.payload.get("member_no") or event.payload.get("card_code")
                print(f"被拒绝：{member_code} {event.payload.get('at')}：{event.reason}")
        pending = sum(1 for event in settled if event.state == "pending")
        if not delivered or pending:
            print(f"尚有 {pending} 条未上传，运行中的 hetang-agent 会继续上传")
        else:
            print("已全部上传")
    finally:
        outbox.close()
    return ExitCode.OK


def _print_problems(sheet: Path, rejected: SheetRejected) -> None:
    print(f"hetang-agent: {sheet} 有错误，未导入任何记录：", file=sys.stderr)
    for problem in rejected.problems[:200]:
        print(f"  第 {problem.line} 行：{problem.message}", file=sys.stderr)


async def _upload(server: ServerAccess, outbox: Outbox) -> bool:
    async with aiohttp.ClientSession() as http:
        client = ServerClient(http, server.url, server.token, __version__)
        return await Uploader(outbox, client, Link()).drain()


def status(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    """hetang-agent status: reads the journal only, safe while `run` runs."""
    path = data_dir_path(_flags(args), environ) / DB_NAME
    if not path.exists():
        raise ConfigError(
            f"{DATA_DIR.label}: no agent journal at {path} (has the agent run with this data dir?)",
            ExitCode.DATA_DIR,
        )
    outbox = Outbox(path)
    try:
        now = clock.now()
        data = snapshot(outbox, ScheduleBook.load(outbox), now)
    finally:
        outbox.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return ExitCode.OK
    upcoming, zone = data["next_session"], ZoneInfo(data["timezone"])
    print(f"待上传 queue depth:      {data['queue_depth']}")
    print(f"上次同步 last sync:       {_local(data['last_sync'], zone) or '从未 never'}")
    if upcoming is None:
        print("下一场次 next session:   无 none")
    else:
        print(
            f"下一场次 next session:   {upcoming['title']} ({upcoming['id']}) "
            f"{_local(upcoming['starts_at'], zone)} – {_local(upcoming['ends_at'], zone)}"
        )
    print(f"已拒绝 rejected:          {data['rejected_count']}")
    print(f"直播 stream:              {_stream_line(data['stream'])}")
    return ExitCode.OK


STREAM_STATE_LABELS = MappingProxyType(
    {"good": "良好 good", "degraded": "较差 degraded", "down": "中断 down"}
)


def _stream_line(stream: dict[str, object]) -> str:
    state = str(stream.get("state"))
    if state not in STREAM_STATE_LABELS:
        return "未接收 idle"
    label = STREAM_STATE_LABELS[state]
    return (
        f"{label} · {stream.get('fps')} fps · {stream.get('bitrate_kbps')} kbps · "
        f"丢包 loss {stream.get('loss_pct')} % (场次 session {stream.get('session_id')})"
    )


def _local(iso_text: str | None, zone: ZoneInfo) -> str:
    """A time in the zone the server shows times in (the staff page's too)."""
    if not iso_text:
        return ""
    return datetime.fromisoformat(iso_text).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())
