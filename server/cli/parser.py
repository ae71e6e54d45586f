"""The `hetang` command line's arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from server.domain.api_tokens import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS
from server.domain.vocabulary import ROLES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hetang", description="Hetang (合堂) server")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="create or upgrade the database schema")
    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument(
        "--host",
        action="append",
        help="an address to listen on; repeat it for several (default: HETANG_HOST)",
    )
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on the one port (default 1; more need PostgreSQL and Redis)",
    )
    # How `--workers` starts each worker: not for people.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--listen-fds", help=argparse.SUPPRESS)
    serve.add_argument("--relay-socket", help=argparse.SUPPRESS)
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every HTTP request (at INFO, on stderr); off by default",
    )
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--org", help="organization code (omit for an admin of the whole tree)")
    add.add_argument("--display-name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    token = sub.add_parser("token", help="personal API tokens").add_subparsers(
        dest="action", required=True
    )
    token_create = token.add_parser("create", help="create a token; prints only the token")
    token_create.add_argument("username")
    token_create.add_argument("--label", default="", help="what the token is for")
    token_create.add_argument(
        "--expires-days",
        type=int,
        default=DEFAULT_TOKEN_DAYS,
        help=f"days until it expires, 1 to {MAX_TOKEN_DAYS} (default {DEFAULT_TOKEN_DAYS})",
    )
    token.add_parser("list", help="a user's tokens (never the tokens themselves)").add_argument(
        "username"
    )
    token.add_parser("revoke", help="revoke a token at once").add_argument(
        "id", help="the token's id, as `token list` shows it"
    )
    venue = sub.add_parser("venue", help="manage venues").add_subparsers(
        dest="action", required=True
    )
    venue_add = venue.add_parser("add", help="add a venue; prints its token once")
    venue_add.add_argument("code")
    venue_add.add_argument("--name", required=True)
    venue_add.add_argument("--org", required=True)
    venue_networks = venue.add_parser(
        "networks",
        help="the networks phones may check in from at a venue (扫码签到); prints them",
    )
    venue_networks.add_argument("code")
    change = venue_networks.add_mutually_exclusive_group()
    change.add_argument("--set", metavar="CIDR,…", help="only these networks, e.g. 10.20.0.0/16")
    change.add_argument("--clear", action="store_true", help="any network (the default)")
    members = sub.add_parser("members", help="members").add_subparsers(dest="action", required=True)
    members.add_parser("import", help="import members from a CSV file").add_argument(
        "file", type=Path
    )
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    audit.add_parser("verify", help="check the keyed hash chain and its anchors")
    agents = sub.add_parser(
        "demo-agents", help="run venue agents for the demo city on this machine"
    )
    agents.add_argument("--count", type=int, default=2, help="how many agents (default 2)")
    agents.add_argument(
        "--ui-port",
        type=int,
        default=8765,
        help="the first agent's staff-page port; the next agents take the ports after it "
        "(default 8765)",
    )
    demo = sub.add_parser("demo", help="fill an empty database with a demo city")
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (and succeed) when the database already has data",
    )
    return parser
