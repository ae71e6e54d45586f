"""The `hetang` command line: migrate, serve, users, tokens, venues, imports, audit, demo."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from server.settings import Settings, SettingsError

T = TypeVar("T")
log = logging.getLogger("hetang")

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hetang", description="Hetang (合堂) server")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("migrate", help="create or upgrade the database schema")
    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument(
        "--role", required=True, choices=["admin", "operator", "venue_staff", "reviewer"]
    )
    add.add_argument("--org", help="organization code (omit for an admin of the whole tree)")
    add.add_argument("--display-name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    token = sub.add_parser("token", help="personal API tokens").add_subparsers(
        dest="action", required=True
    )
    token.add_parser("create", help="create a token; prints only the token").add_argument(
        "username"
    )
    venue = sub.add_parser("venue", help="manage venues").add_subparsers(
        dest="action", required=True
    )
    venue_add = venue.add_parser("add", help="add a venue; prints its token once")
    venue_add.add_argument("code")
    venue_add.add_argument("--name", required=True)
    venue_add.add_argument("--org", required=True)
    members = sub.add_parser("members", help="members").add_subparsers(dest="action", required=True)
    members.add_parser("import", help="import members from a CSV file").add_argument(
        "file", type=Path
    )
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    audit.add_parser("verify", help="check the hash chain")
    agents = sub.add_parser(
        "demo-agents", help="run venue agents for the demo city on this machine"
    )
    agents.add_argument("--count", type=int, default=2, help="how many agents (default 2)")
    demo = sub.add_parser("demo", help="fill an empty database with a demo city")
    demo.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (and succeed) when the database already has data",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hetang` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Every ICE check and connection step is logged at INFO by these: noise for an operator.
    for chatty in ("alembic.runtime.plugins", "aioice", "aiortc"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"hetang: {error}", file=sys.stderr)
        return EXIT_USAGE
    from server import commands

    handlers: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "migrate": commands.migrate,
        "serve": commands.serve,
        "user": commands.user_add,
        "token": commands.token_create,
        "venue": commands.venue_add,
        "members": commands.members_import,
        "audit": commands.audit_verify,
        "demo": commands.demo,
        "demo-agents": commands.demo_agents,
    }
    return handlers[args.command](args, settings)


def run(coro: Awaitable[T]) -> T:
    """Run one coroutine to completion."""

    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


def read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new user's password: from stdin, typed twice, or generated (then shown)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat: "):
            raise SystemExit("hetang: the passwords differ")
        return first, False
    return secrets.token_urlsafe(12), True


if __name__ == "__main__":
    sys.exit(main())
