"""`hetang serve`: one process, or (`--workers N`) the parent of N workers, or one of them."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from aiohttp import web

from server.cli.commands import EXIT_ERROR, EXIT_OK, EXIT_USAGE, url_host
from server.http.i18n import load_translations
from server.settings import Settings, parse_listen_hosts

LISTENING = "Hetang is running at {urls} (press Ctrl+C to stop)"
MAX_WORKERS = 64


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """hetang serve [--host ADDRESS]... [--port] [--workers N] [--access-log]"""
    from server.app import create_app
    from server.cli.workers import ListenError, supervise
    from server.rtc.relay_link import RelayPlace

    try:
        hosts = parse_listen_hosts(",".join(args.host)) if args.host else settings.hosts
    except ValueError as error:
        print(f"hetang: --host: {error}", file=sys.stderr)
        return EXIT_USAGE
    port = args.port or settings.port
    if args.worker is None and args.workers != 1:
        problem = _workers_problem(args.workers, settings)
        if problem:
            print(f"hetang: --workers: {problem}", file=sys.stderr)
            return EXIT_USAGE
        worker_args = ["--log-level", args.log_level, "serve", "--port", str(port)]
        worker_args += [f"--host={host}" for host in hosts]  # for worker 0's one line
        worker_args += ["--access-log"] if args.access_log else []
        try:
            return supervise(args.workers, hosts, port, worker_args)
        except ListenError as error:
            print(f"hetang: {error}", file=sys.stderr)
            return EXIT_ERROR
    gettext = load_translations()[settings.locale].gettext
    urls = ", ".join(f"http://{url_host(host)}:{port}" for host in hosts)

    def announce(_aiohttp_banner: str) -> None:
        # Called once every address is listening: the one line a newcomer waits for.
        print(gettext(LISTENING).format(urls=urls), flush=True)

    sockets = None
    if args.worker is None:
        app = create_app(settings)
    else:  # one of several workers: the parent listens, worker 0 holds the relay
        place = RelayPlace(owner=args.worker == 0, socket=Path(args.relay_socket))
        app = create_app(settings, place)
        sockets = [socket.socket(fileno=int(fd)) for fd in args.listen_fds.split(",")]
    web.run_app(
        app,
        host=None if sockets else list(hosts),
        port=None if sockets else port,
        sock=sockets,
        print=announce if not args.worker else None,
        # Request lines drown the demo's logins and any warning: only on request.
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
        access_log_format='%a "%r" %s %b %Tf',
    )
    return EXIT_OK


def _workers_problem(count: int, settings: Settings) -> str | None:
    """Why `--workers count` cannot run with these settings (None: it can)."""
    if not 1 <= count <= MAX_WORKERS:
        return f"give 1 to {MAX_WORKERS} processes, not {count}"
    if settings.is_sqlite or settings.redis_url is None:
        return (
            "several processes share their work through PostgreSQL and Redis: "
            "set HETANG_DATABASE_URL to a PostgreSQL database and HETANG_REDIS_URL"
        )
    return None
