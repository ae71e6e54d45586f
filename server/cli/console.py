"""What the `hetang` commands ask of the person at the console."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys


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
