"""The `hetang` command line: migrate, serve, users, tokens, venues, imports, audit, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from server.cli import commands, serve
from server.cli.parser import build_parser
from server.settings import Settings, SettingsError

log = logging.getLogger("hetang")

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hetang` console script."""
    args = build_parser().parse_args(argv)
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
    handlers: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "migrate": commands.migrate,
        "serve": serve.serve,
        "user": commands.user_add,
        "token": commands.token,
        "venue": commands.venue,
        "members": commands.members_import,
        "audit": commands.audit_verify,
        "demo": commands.demo,
        "demo-agents": commands.demo_agents,
    }
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
