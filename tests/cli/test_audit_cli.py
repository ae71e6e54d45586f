"""The audit trail records every change and `hetang audit verify` finds tampering; the CLI
answers user mistakes with one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth import tokens
from server.auth.principal import WHOLE_TREE
from server.db.models import ApiToken, AuditEntry, Member, User, Venue
from server.db.session import make_engine, make_sessionmaker, read_session, write_session
from server.services import organizations, users
from tests.support.client import Client
from tests.support.world import SECRET, TREE, World

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    """What a CLI run left: exit code, standard output and standard error."""

    code: int
    out: str
    err: str


async def hetang(
    *args: str,
    database_url: str,
    data_dir: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> Ran:
    """The real `hetang` command line in a process of its own."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HETANG_")}
    environ.update(
        HETANG_DATABASE_URL=database_url,
        HETANG_SECRET_KEY=SECRET,
        HETANG_DATA_DIR=str(data_dir),
        HETANG_LOCALE="en",  # messages as in the source, so the tests can read them
    )
    environ.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
        cwd=ROOT,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def user_error(ran: Ran, *words: str) -> None:
    """A mistake of the user: non-zero exit, a line on stderr naming it, no traceback."""
    assert ran.code != 0, ran
    assert "Traceback" not in ran.err, ran.err
    assert ran.err.startswith("hetang: "), ran.err
    for word in words:
        assert word in ran.err, (word, ran.err)


def as_dict(value: Any) -> Any:
    """An audit snapshot, whether the column hands back JSON or its canonical text."""
    return json.loads(value) if isinstance(value, str) else value


async def audit_entries(db: async_sessionmaker[AsyncSession]) -> list[AuditEntry]:
    async with read_session(db) as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


# ---- the audit chain ------------------------------------------------------------------------


async def test_every_change_is_audited(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    admin = world.auth("admin", "a")
    start = len(await audit_entries(db))

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        headers = {**admin, **kwargs.pop("headers", {})}
        response = await client.request(method, path, headers=headers, **kwargs)
        assert response.status in (200, 201), await response.text()
        return await response.json()

    await call(
        "POST",
        "/api/v1/organizations",
        json={"code": "n1", "name": "新党委", "level": "committee", "parent_code": "a"},
    )
    await call(
        "POST",
        "/api/v1/members",
        json={"member_no": "m1", "name": "甲", "org_code": "n1", "category": "ordinary"},
    )
    await call(
        "POST",
        "/api/v1/members/import",
        data="member_no,name,org_code,category\nm1,甲,n1,secretary\nm2,乙,n1,ordinary\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    created = await call(
        "POST", "/api/v1/venues", json={"code": "v1", "name": "会场", "org_code": "n1"}
    )
    rotated = await call("POST", "/api/v1/venues/v1/token")
    async with write_session(db) as session:
        await users.create_user(
            session,
            WHOLE_TREE,
            "user:admin-a",
            username="clerk",
            display_name="办事员",
            role="operator",
            org_code="n1",
            password_hash=None,
        )
        await users.update_user(
            session,
            WHOLE_TREE,
            "user:admin-a",
            "clerk",
            role="reviewer",
            org_code="n1",
            display_name="办事员",
            is_active=True,
        )
        await users.set_password(session, WHOLE_TREE, "user:admin-a", "clerk", "argon2-hash")
        token = await users.create_api_token(session, WHOLE_TREE, "user:admin-a", "clerk")
        await users.revoke_api_tokens(session, WHOLE_TREE, "user:admin-a", "clerk")
    async with read_session(db) as session:
        expires = await session.scalar(
            select(ApiToken.expires_at).where(ApiToken.digest == tokens.digest(token))
        )
    assert expires is not None

    found = [
        (e.actor, e.action, e.object_type, e.object_id, as_dict(e.before), as_dict(e.after))
        for e in (await audit_entries(db))[start:]
    ]
    actor = "user:admin-a"
    assert found == [
        (
            actor,
            "organization.create",
            "organization",
            "n1",
            None,
            {"code": "n1", "name": "新党委", "level": "committee", "parent_code": "a"},
        ),
        (
            actor,
            "member.create",
            "member",
            "m1",
            None,
            {
                "member_no": "m1",
                "name": "甲",
                "org_code": "n1",
                "category": "ordinary",
                "card_code": None,
            },
        ),
        (
            actor,
            "member.import",
            "member",
            "m2",
            None,
            {
                "member_no": "m2",
                "name": "乙",
                "org_code": "n1",
                "category": "ordinary",
                "card_code": None,
            },
        ),
        (
            actor,
            "member.import",
            "member",
            "m1",
            {"category": "ordinary"},
            {"category": "secretary"},
        ),
        (
            actor,
            "venue.create",
            "venue",
            "v1",
            None,
            {"code": "v1", "name": "会场", "org_code": "n1", "token_hint": created["token"][:8]},
        ),
        (
            actor,
            "venue.token_rotate",
            "venue",
            "v1",
            {"token_hint": created["token"][:8]},
            {"token_hint": rotated["token"][:8]},
        ),
        (
            actor,
            "user.create",
            "user",
            "clerk",
            None,
            {
                "username": "clerk",
                "display_name": "办事员",
                "role": "operator",
                "org_code": "n1",
                "is_active": True,
            },
        ),
        (actor, "user.update", "user", "clerk", {"role": "operator"}, {"role": "reviewer"}),
        (actor, "user.password", "user", "clerk", None, None),
        (
            actor,
            "token.create",
            "user",
            "clerk",
            None,
            {"token_hint": token[:8], "label": "", "expires_at": expires.isoformat()},
        ),
        (actor, "token.revoke", "user", "clerk", {"tokens": [token[:8]]}, None),
    ]
    entries = await audit_entries(db)
    assert [e.id for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.prev_hash == previous.hash for previous, e in itertools.pairwise(entries))


async def test_audit_verify_finds_a_changed_entry(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
    database_url: str,
    tmp_path: Path,
) -> None:
    count = len(await audit_entries(db))
    assert count > 10  # the world's tree, users and tokens
    ran = await hetang("audit", "verify", database_url=database_url, data_dir=tmp_path)
    assert (ran.code, ran.out.strip()) == (0, f"ok: {count} entries"), ran

    async with db() as session, session.begin():
        await session.execute(
            text('UPDATE audit_entries SET "after" = :value WHERE id = 5'),
            {"value": '{"code":"forged"}'},
        )
    ran = await hetang("audit", "verify", database_url=database_url, data_dir=tmp_path)
    assert ran.code != 0
    assert re.search(r"\bbroken at entry 5\b", ran.out), ran
    assert "Traceback" not in ran.err


async def test_audit_verify_finds_a_deleted_entry(
    db: async_sessionmaker[AsyncSession],
    world: World,
    database_url: str,
    tmp_path: Path,
) -> None:
    async with db() as session, session.begin():
        await session.execute(text("DELETE FROM audit_entries WHERE id = 3"))
    ran = await hetang("audit", "verify", database_url=database_url, data_dir=tmp_path)
    assert ran.code != 0
    assert re.search(r"\bbroken at entry 4\b", ran.out), ran
    assert "2 entries before it are intact" in ran.out


async def test_cli_tokens_print_only_the_token(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
    database_url: str,
    tmp_path: Path,
) -> None:
    ran = await hetang(
        "token", "create", "Reviewer-A", database_url=database_url, data_dir=tmp_path
    )
    assert ran.code == 0, ran
    assert re.fullmatch(r"hu_[A-Za-z0-9_-]{43}\n", ran.out), ran.out
    token = ran.out.strip()
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await response.json())["username"] == "reviewer-a"

    ran = await hetang(
        "venue",
        "add",
        "cli-room",
        "--name",
        "村部会议室",
        "--org",
        "a1a",
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert ran.code == 0, ran
    assert re.fullmatch(r"hv_[A-Za-z0-9_-]{43}\n", ran.out), ran.out
    venue_token = ran.out.strip()
    hello = await client.post(
        "/api/v1/agent/hello",
        json={"agent_version": "1.0", "hostname": "pc"},
        headers={"Authorization": f"Bearer {venue_token}"},
    )
    assert (await hello.json())["venue"] == {"code": "cli-room", "name": "村部会议室"}
    async with read_session(db) as session:
        digests = set((await session.execute(select(ApiToken.digest))).scalars())
        venue_digest = await session.scalar(
            select(Venue.token_digest).where(Venue.code == "cli-room")
        )
        actors = set((await session.execute(select(AuditEntry.actor))).scalars())
    assert tokens.digest(token) in digests
    assert venue_digest == tokens.digest(venue_token)
    assert "cli" in actors


# ---- user mistakes on the command line (SQLite) ---------------------------------------------


@pytest.fixture
async def cli_db(sqlite_template: Path, tmp_path: Path) -> Any:
    """A migrated SQLite file with the organization tree, for the CLI's own runs."""
    path = tmp_path / "cli.sqlite3"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    async with write_session(factory) as session:
        for fields in TREE:
            await organizations.create_org(session, WHOLE_TREE, "test", fields)
    yield url, factory
    await engine.dispose()


async def count(factory: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with read_session(factory) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_cli_user_mistakes(cli_db: Any, tmp_path: Path) -> None:
    url, factory = cli_db
    entries = await count(factory, AuditEntry)

    async def run(*args: str, **kwargs: Any) -> Ran:
        return await hetang(*args, database_url=url, data_dir=tmp_path, **kwargs)

    ran = await run(
        "user", "add", "opx", "--role", "operator", "--password-stdin", stdin="long-password\n"
    )
    user_error(ran, "organization", "org_code")
    ran = await run(
        "user", "add", "x", "--role", "admin", "--password-stdin", stdin="long-password\n"
    )
    user_error(ran, "username")
    ran = await run("user", "add", "shorty", "--role", "admin", "--password-stdin", stdin="short\n")
    user_error(ran, "password", "8")
    ran = await run("venue", "add", "v1", "--name", "会场", "--org", "nosuch")
    user_error(ran, "nosuch", "does not exist")
    ran = await run("venue", "add", "v 1", "--name", "会场", "--org", "a1")
    user_error(ran, "code:")
    ran = await run("token", "create", "nobody")
    user_error(ran, "nobody")
    assert ran.out == ""

    missing = tmp_path / "missing.csv"
    ran = await run("members", "import", str(missing))
    user_error(ran, str(missing), "No such file")
    bad = tmp_path / "bad.csv"
    bad.write_text("member_no,name,org_code,category\nm1,甲,a1,ordinary\nm2,乙,nosuch,ordinary\n")
    ran = await run("members", "import", str(bad))
    assert ran.code != 0 and "Traceback" not in ran.err
    assert "nothing was imported" in ran.err
    assert re.search(r"line 3: .*nosuch", ran.err), ran.err

    assert await count(factory, User) == 0
    assert await count(factory, Venue) == 0
    assert await count(factory, Member) == 0
    assert await count(factory, AuditEntry) == entries


async def test_cli_bad_settings_and_database(cli_db: Any, tmp_path: Path) -> None:
    url, _ = cli_db
    for env, name in (
        ({"HETANG_PORT": "eighty"}, "HETANG_PORT"),
        ({"HETANG_PORT": "70000"}, "HETANG_PORT"),
        ({"HETANG_TIMEZONE": "Mars/Olympus"}, "HETANG_TIMEZONE"),
        ({"HETANG_SECRET_KEY": "short"}, "HETANG_SECRET_KEY"),
    ):
        ran = await hetang("audit", "verify", database_url=url, data_dir=tmp_path, env=env)
        user_error(ran, name)
    ran = await hetang("audit", "verify", database_url="mysql://x", data_dir=tmp_path)
    user_error(ran, "HETANG_DATABASE_URL")
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    ran = await hetang("token", "create", "root", database_url=empty, data_dir=tmp_path)
    user_error(ran, "hetang migrate")


# ---- security review, issue 11, finding 14: a stored time that cannot be read ----------------


@pytest.mark.sqlite_only  # PostgreSQL refuses such a time in a timestamp column
async def test_audit_verify_names_an_entry_whose_time_cannot_be_read(
    db: async_sessionmaker[AsyncSession], world: World, database_url: str, tmp_path: Path
) -> None:
    async with db() as session, session.begin():
        await session.execute(text("UPDATE audit_entries SET at = 'not a time' WHERE id = 5"))
    ran = await hetang("audit", "verify", database_url=database_url, data_dir=tmp_path)
    assert ran.code != 0, ran
    assert "Traceback" not in ran.err, ran.err
    assert re.search(r"\bbroken at entry 5\b.*not a time", ran.out), ran
    assert "4 entries before it are intact" in ran.out


async def test_cli_sets_the_networks_phones_may_check_in_from(cli_db: Any, tmp_path: Path) -> None:
    url, factory = cli_db

    async def run(*args: str) -> Ran:
        return await hetang(*args, database_url=url, data_dir=tmp_path)

    async def stored() -> str | None:
        async with read_session(factory) as session:
            found: str | None = await session.scalar(
                select(Venue.selfcheckin_networks).where(Venue.code == "v1")
            )
            return found

    assert (await run("venue", "add", "v1", "--name", "西泉村分会场", "--org", "a1")).code == 0
    shown = await run("venue", "networks", "v1")
    assert (shown.code, shown.out) == (0, "any network\n")
    entries = await count(factory, AuditEntry)
    ran = await run("venue", "networks", "v1", "--set", "10.20.0.1/16, 192.168.1.0/24")
    assert (ran.code, ran.out) == (0, "10.20.0.0/16\n192.168.1.0/24\n"), ran
    assert await stored() == "10.20.0.0/16, 192.168.1.0/24"
    [entry] = (await audit_entries(factory))[entries:]
    assert (entry.action, entry.object_id, entry.actor) == (
        "venue.selfcheckin_networks",
        "v1",
        "cli",
    )
    assert as_dict(entry.after) == {"selfcheckin_networks": "10.20.0.0/16, 192.168.1.0/24"}

    # A bad list is refused, naming it, and nothing changes; an unknown venue too.
    ran = await run("venue", "networks", "v1", "--set", "10.20.0.0/16, the-office")
    user_error(ran, "the-office", "networks")
    ran = await run("venue", "networks", "nosuch", "--set", "10.0.0.0/8")
    user_error(ran, "nosuch")
    assert await stored() == "10.20.0.0/16, 192.168.1.0/24"
    assert await count(factory, AuditEntry) == entries + 1

    ran = await run("venue", "networks", "v1", "--clear")
    assert (ran.code, ran.out) == (0, "any network\n") and await stored() is None
    assert await count(factory, AuditEntry) == entries + 2
