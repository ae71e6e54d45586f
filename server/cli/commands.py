"""What each `hetang` subcommand does; errors become a line on stderr and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.passwords import MIN_PASSWORD_LENGTH, PasswordService
from server.auth.principal import WHOLE_TREE
from server.cli.console import read_password
from server.db.session import make_engine, make_sessionmaker, read_session, write_session
from server.domain.audit_chain import AuditSeal
from server.domain.venues import VenueFields
from server.errors import ApiError, Internal
from server.http.i18n import load_translations
from server.services import api_tokens, audit, users, venues
from server.services.api_tokens import TokenView
from server.services.clock import utcnow
from server.services.member_import import ImportRejected, import_members_csv
from server.settings import Settings

T = TypeVar("T")
CLI_ACTOR = "cli"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _fail(settings: Settings, error: ApiError) -> int:
    gettext = load_translations()[settings.locale].gettext
    print(f"hetang: {error.describe(gettext)}", file=sys.stderr)
    for name, issue in (error.fields or {}).items():
        print(f"  {name}: {gettext(issue)}", file=sys.stderr)
    if isinstance(error, ImportRejected):
        for problem in error.problems[:200]:
            print(f"  line {problem.line}: {problem.render(gettext)}", file=sys.stderr)
        if len(error.problems) > 200:
            print(f"  … and {len(error.problems) - 200} more", file=sys.stderr)
    return EXIT_ERROR


def _with_db(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    async def runner() -> T:
        engine = make_engine(settings.database_url)
        seal = AuditSeal.of(settings.secret_key, settings.data_dir)
        try:
            return await work(make_sessionmaker(engine, seal))
        except (DBAPIError, OSError) as error:
            # Unreachable server, missing file or tables: say so instead of a traceback.
            detail = error.orig if isinstance(error, DBAPIError) else error
            raise Internal(
                "The database cannot be used ({problem}); check HETANG_DATABASE_URL "
                "and run `hetang migrate`.",
                problem=str(detail).splitlines()[0] if str(detail) else type(detail).__name__,
            ) from None
        finally:
            await engine.dispose()

    return asyncio.run(runner())


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    """hetang migrate"""
    from server.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date", file=sys.stderr)
    return EXIT_OK


def user_add(args: argparse.Namespace, settings: Settings) -> int:
    """hetang user add NAME --role R [--org CODE] [--password-stdin]"""

    password, generated = read_password(args)
    if len(password) < MIN_PASSWORD_LENGTH:
        print(
            f"hetang: the password must have at least {MIN_PASSWORD_LENGTH} characters",
            file=sys.stderr,
        )
        return EXIT_USAGE
    password_hash = PasswordService().hash_sync(password)

    async def work(factory: async_sessionmaker[AsyncSession]) -> None:
        async with write_session(factory) as session:
            await users.create_user(
                session,
                WHOLE_TREE,
                CLI_ACTOR,
                username=args.name,
                display_name=args.display_name or args.name,
                role=args.role,
                org_code=args.org,
                password_hash=password_hash,
            )

    try:
        _with_db(settings, work)
    except ApiError as error:
        return _fail(settings, error)
    if generated:
        print(f"password: {password}")
    print(f"user {args.name.lower()} added as {args.role}", file=sys.stderr)
    return EXIT_OK


def token(args: argparse.Namespace, settings: Settings) -> int:
    """hetang token create|list|revoke"""
    actions = {"create": token_create, "list": token_list, "revoke": token_revoke}
    return actions[args.action](args, settings)


def token_create(args: argparse.Namespace, settings: Settings) -> int:
    """hetang token create USERNAME [--label L] [--expires-days N]: prints only the hu_… token
    on stdout."""

    async def work(factory: async_sessionmaker[AsyncSession]) -> str:
        async with write_session(factory) as session:
            return await users.create_api_token(
                session,
                WHOLE_TREE,
                CLI_ACTOR,
                args.username,
                label=args.label,
                expires_days=args.expires_days,
            )

    try:
        print(_with_db(settings, work))
    except ApiError as error:
        return _fail(settings, error)
    return EXIT_OK


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


def token_list(args: argparse.Namespace, settings: Settings) -> int:
    """hetang token list USERNAME: one tab-separated line per token, newest first (times UTC)."""

    async def work(factory: async_sessionmaker[AsyncSession]) -> list[TokenView]:
        async with read_session(factory) as session:
            return await api_tokens.list_of_user(session, WHOLE_TREE, args.username)

    try:
        views = _with_db(settings, work)
    except ApiError as error:
        return _fail(settings, error)
    now = utcnow()
    print("id\tstate\texpires_at\tlast_used_at\tcreated_at\thint\tlabel")
    for view in views:
        times = (view.expires_at, view.last_used_at, view.created_at)
        print("\t".join([str(view.id), view.state(now), *map(_utc, times), view.hint, view.label]))
    return EXIT_OK


def token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """hetang token revoke ID: the token stops working at once."""

    async def work(factory: async_sessionmaker[AsyncSession]) -> TokenView:
        async with write_session(factory) as session:
            return await api_tokens.revoke(
                session, CLI_ACTOR, args.id, own_user_id=None, admin_scope=WHOLE_TREE
            )

    try:
        view = _with_db(settings, work)
    except ApiError as error:
        return _fail(settings, error)
    print(f"token {view.id} ({view.hint}…) of {view.username} is revoked")
    return EXIT_OK


def venue(args: argparse.Namespace, settings: Settings) -> int:
    """hetang venue add|networks"""
    actions = {"add": venue_add, "networks": venue_networks}
    return actions[args.action](args, settings)


def venue_networks(args: argparse.Namespace, settings: Settings) -> int:
    """hetang venue networks CODE [--set CIDR,… | --clear]: prints the networks phones may
    check in from at the venue (扫码签到), one per line, or "any network"."""

    async def work(factory: async_sessionmaker[AsyncSession]) -> str | None:
        async with write_session(factory) as session:
            if args.set is None and not args.clear:
                return await venues.selfcheckin_networks(session, WHOLE_TREE, args.code)
            text = None if args.clear else args.set
            return await venues.set_selfcheckin_networks(
                session, WHOLE_TREE, CLI_ACTOR, args.code, text
            )

    try:
        stored = _with_db(settings, work)
    except ApiError as error:
        return _fail(settings, error)
    print("\n".join((stored or "any network").split(", ")))
    return EXIT_OK


def venue_add(args: argparse.Namespace, settings: Settings) -> int:
    """hetang venue add CODE --name N --org CODE: prints the hv_… token once."""
    from server.domain.venues import parse_venue
    from server.http.body import checked

    async def work(factory: async_sessionmaker[AsyncSession]) -> str:
        fields: VenueFields = checked(
            parse_venue({"code": args.code, "name": args.name, "org_code": args.org})
        )
        async with write_session(factory) as session:
            _, token = await venues.create_venue(session, WHOLE_TREE, CLI_ACTOR, fields)
        return token

    try:
        print(_with_db(settings, work))
    except ApiError as error:
        return _fail(settings, error)
    return EXIT_OK


def members_import(args: argparse.Namespace, settings: Settings) -> int:
    """hetang members import FILE.csv: all rows or none, with progress on stderr."""
    try:
        data = args.file.read_bytes()
    except OSError as error:
        print(f"hetang: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()

    def progress(stage: str, done: int, total: int) -> None:
        print(f"\r{stage}: {done}/{total}", end="", file=sys.stderr, flush=True)

    async def work(factory: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
        async with write_session(factory) as session:
            result = await import_members_csv(session, WHOLE_TREE, CLI_ACTOR, data, progress)
        return result.created, result.updated, result.unchanged

    try:
        created, updated, unchanged = _with_db(settings, work)
    except ApiError as error:
        print(file=sys.stderr)
        return _fail(settings, error)
    elapsed = time.monotonic() - started
    print(file=sys.stderr)
    print(f"created {created}, updated {updated}, unchanged {unchanged} in {elapsed:.1f} s")
    return EXIT_OK


def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """hetang audit verify: "ok" with the count, or the first problem (the entry it concerns,
    when it concerns one)."""

    async def work(factory: async_sessionmaker[AsyncSession]) -> audit.ChainReport:
        async with read_session(factory) as session:
            return await audit.verify(session)

    try:
        report = _with_db(settings, work)
    except ApiError as error:
        return _fail(settings, error)
    if report.ok:
        print(f"ok: {report.count} entries")
        # The details on stderr: stdout stays the one-line verdict scripts read.
        legacy = report.count - report.keyed
        anchors = "; ".join(report.anchors) or "nothing yet"
        print(f"keyed: {report.keyed}, from before keying: {legacy}", file=sys.stderr)
        print(f"head anchored by: {anchors}", file=sys.stderr)
        return EXIT_OK
    where = "broken" if report.broken_at is None else f"broken at entry {report.broken_at}"
    intact = "" if report.intact is None else f" ({report.intact} entries before it are intact)"
    print(f"{where}: {report.problem}{intact}")
    return EXIT_ERROR


def demo(args: argparse.Namespace, settings: Settings) -> int:
    """hetang demo [--if-empty]: a demo city in an empty database."""
    from server.demo.city import DemoRefused, demo_logins, seed_demo, today_line
    from server.demo.today import ensure_today

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    base = f"http://{url_host(settings.host)}:{settings.port}"

    async def work(factory: async_sessionmaker[AsyncSession]) -> list[str]:
        return await seed_demo(factory, progress, server_url=base)

    try:
        logins = _with_db(settings, work)
    except DemoRefused as refused:
        if args.if_empty:
            print(
                "the database already has data; the demo city was not added again", file=sys.stderr
            )
            # The history stays; a session to try check-in and broadcast on is added if need be.
            today = _with_db(settings, lambda factory: ensure_today(factory, utcnow()))
            for line in demo_logins(base):
                print(line)
            if today is not None:
                print(today_line(today, base))
            return EXIT_OK
        print(f"hetang: {refused}", file=sys.stderr)
        return EXIT_ERROR
    for line in logins:
        print(line)
    return EXIT_OK


def demo_agents(args: argparse.Namespace, settings: Settings) -> int:
    """hetang demo-agents [--count N] [--ui-port P]: real agents for the demo city's venues."""
    from server.demo.agents import pick_and_rotate, run_agents

    if not 1 <= args.count <= 20:
        print("hetang: --count must be between 1 and 20", file=sys.stderr)
        return EXIT_USAGE
    if not 1024 <= args.ui_port <= 65535 - args.count:
        print(f"hetang: --ui-port must be between 1024 and {65535 - args.count}", file=sys.stderr)
        return EXIT_USAGE

    async def work(factory: async_sessionmaker[AsyncSession]) -> int:
        public_id, agents = await pick_and_rotate(
            factory, args.count, settings.data_dir, args.ui_port
        )
        if not agents:
            print("hetang: there are no venues; run `hetang demo` first", file=sys.stderr)
            return EXIT_ERROR
        base = f"http://{url_host(settings.host)}:{settings.port}"
        if public_id is not None:
            print(
                f"demo agents follow session {public_id}: open {base}/sessions/{public_id}/console "
                "as the operator and press 开始直播",
                flush=True,
            )
        return await run_agents(agents, base, settings.ice.hosts, args.log_level)

    return _with_db(settings, work)


def url_host(host: str) -> str:
    """A host as it stands in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host
