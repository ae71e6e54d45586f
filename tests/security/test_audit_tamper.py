"""Security review, issue 11, finding 8: `hetang audit verify` detects every kind of tampering with
the audit trail — field edits, deletions in the middle and at the tail, reorders, and rewrites
rehashed without the server's key. A realistic trail is written through the real app and
services (entries from before keying first, as an upgraded database has them), then each of
150 seeded random tampers is applied to a fresh copy of it (a transaction rolled back afterwards)
and checked with the code the command runs; a few tampered copies go through the command
itself."""

from __future__ import annotations

import random
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import AuditEntry
from server.db.session import make_engine, make_sessionmaker, read_session, write_session
from server.domain.audit_chain import (
    GENESIS,
    KEYED,
    LEGACY,
    chain_key,
    entry_hash,
    keyed_entry_hash,
)
from server.services import audit
from server.settings import Settings
from tests.support.audit_trail import build_trail, sealed_sessions, verify_command
from tests.support.client import Client
from tests.support.world import World

PER_KIND = 30
# The fields of an entry a tamperer may edit.
FIELDS = (
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "note",
    "prev_hash",
    "hash",
    "chain_version",
)
CONTENT = ("at", "actor", "action", "object_type", "object_id", "before", "after", "note")


# ---- the tampers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One entry as it was before the tamper."""

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: str | None
    after: str | None
    note: str | None
    prev_hash: str
    hash: str
    chain_version: int


async def stored_entries(session: AsyncSession) -> list[Stored]:
    rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
    return [Stored(**{name: getattr(row, name) for name in Stored.__annotations__}) for row in rows]


def random_hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def changed(rng: random.Random, entry: Stored, field: str) -> Any:
    """Another value for one field of an entry."""
    old = getattr(entry, field)
    if field == "at":
        return old + timedelta(seconds=rng.choice((-1, 1)) * rng.randint(1, 10**6))
    if field in ("prev_hash", "hash"):
        return random_hex(rng)
    if field == "chain_version":
        return rng.choice([version for version in (LEGACY, KEYED, 3, 0) if version != old])
    if old is None:
        return rng.choice(('{"forged":true}', "x", ""))
    candidates = [old + rng.choice("x}0 "), old[:-1], old.upper(), old[::-1]]
    if len(old) > 1:
        at = rng.randrange(len(old))
        candidates.append(old[:at] + rng.choice("01xy") + old[at + 1 :])
    if field in ("before", "after", "note"):
        candidates.append(None)
    return rng.choice([value for value in candidates if value != old])


Tamper = Callable[[AsyncSession, random.Random, list[Stored]], Awaitable[str]]


async def edit_a_field(session: AsyncSession, rng: random.Random, entries: list[Stored]) -> str:
    entry = rng.choice(entries)
    field = rng.choice(FIELDS)
    value = changed(rng, entry, field)
    await session.execute(
        update(AuditEntry)
        .where(AuditEntry.id == entry.id)
        .values({field: value})
        .execution_options(synchronize_session=False)
    )
    return f"entry {entry.id}: {field} {getattr(entry, field)!r} → {value!r}"


async def delete_in_the_middle(
    session: AsyncSession, rng: random.Random, entries: list[Stored]
) -> str:
    last = len(entries)
    first = rng.randint(1, last - 1)
    through = rng.randint(first, min(first + 4, last - 1))  # the last entry stays
    await session.execute(delete(AuditEntry).where(AuditEntry.id.between(first, through)))
    return f"entries {first}–{through} of {last} deleted"


async def delete_at_the_tail(
    session: AsyncSession, rng: random.Random, entries: list[Stored]
) -> str:
    last = len(entries)
    kept = last - rng.randint(1, min(10, last - 1))
    await session.execute(delete(AuditEntry).where(AuditEntry.id > kept))
    return f"entries {kept + 1}–{last} deleted (truncated)"


async def reorder(session: AsyncSession, rng: random.Random, entries: list[Stored]) -> str:
    last = len(entries)
    how = rng.choice(("swap", "adjacent", "rotate", "reverse"))
    if how == "swap":
        first, second = sorted(rng.sample(range(1, last + 1), 2))
        moves = {first: second, second: first}
    elif how == "adjacent":
        first = rng.randint(1, last - 1)
        moves = {first: first + 1, first + 1: first}
    else:
        size = rng.randint(3, 6)
        first = rng.randint(1, last - size + 1)
        block = list(range(first, first + size))
        target = block[1:] + block[:1] if how == "rotate" else block[::-1]
        moves = dict(zip(block, target, strict=True))
    # Through negative ids, so no two rows ever hold one id.
    for old, new in moves.items():
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == old)
            .values(id=-new)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(AuditEntry)
        .where(AuditEntry.id < 0)
        .values(id=-AuditEntry.id)
        .execution_options(synchronize_session=False)
    )
    return f"{how}: {sorted(moves.items())}"


def rehash(entry: Stored, position: int, prev: str, strategy: str, key: bytes) -> dict[str, Any]:
    """The columns a tamperer rewrites: the unkeyed hash, or the keyed one with a guessed key
    (the code is public, the server's secret key is not)."""
    fields = (
        entry.at,
        entry.actor,
        entry.action,
        entry.object_type,
        entry.object_id,
        entry.before,
        entry.after,
        entry.note,
    )
    if strategy == "legacy":
        found = entry_hash(position, prev, *fields)
        return {"prev_hash": prev, "hash": found, "chain_version": LEGACY}
    found = keyed_entry_hash(key, position, prev, *fields)
    return {"prev_hash": prev, "hash": found, "chain_version": KEYED}


async def rewrite_and_rehash(
    session: AsyncSession, rng: random.Random, entries: list[Stored]
) -> str:
    strategy = rng.choice(("legacy", "guessed key", "guessed secret"))
    start = 1 if rng.random() < 0.15 else rng.randint(1, len(entries))
    field = rng.choice(CONTENT)
    target = entries[start - 1]
    forged = Stored(**{**target.__dict__, field: changed(rng, target, field)})
    key = rng.randbytes(32) if strategy == "guessed key" else chain_key(f"guess-{rng.random()}")
    prev = entries[start - 2].hash if start > 1 else GENESIS
    for entry in [forged, *entries[start:]]:
        values = rehash(entry, entry.id, prev, strategy, key)
        if entry is forged:
            values[field] = getattr(forged, field)
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == entry.id)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        prev = values["hash"]
    return f"entry {start} {field} edited, entries {start}–{len(entries)} rehashed ({strategy})"


TAMPERS: dict[str, Tamper] = {
    "field edit": edit_a_field,
    "deletion in the middle": delete_in_the_middle,
    "deletion at the tail": delete_at_the_tail,
    "reorder": reorder,
    "rewrite and rehash": rewrite_and_rehash,
}


# ---- the tests -------------------------------------------------------------------------------


async def test_every_random_tamper_is_detected(
    client: Client, world: World, settings: Settings
) -> None:
    rng = random.Random(11)  # issue 11: the same tampers on every run
    async with sealed_sessions(settings) as sessions:
        total = await build_trail(client, world, sessions)
        async with read_session(sessions) as session:
            assert (await audit.verify(session)).ok
            entries = await stored_entries(session)
        assert len(entries) == total > 50
        missed: list[tuple[str, str]] = []
        tried = 0
        for _ in range(PER_KIND):
            for kind, tamper in TAMPERS.items():
                async with sessions() as session:
                    transaction = await session.begin()
                    what = await tamper(session, rng, entries)
                    report = await audit.verify(session)
                    await transaction.rollback()
                tried += 1
                if report.ok:
                    missed.append((kind, what))
        assert tried >= 100
        assert missed == []
        async with read_session(sessions) as session:
            report = await audit.verify(session)  # every tamper was undone
        assert report.ok and report.count == total


@pytest.mark.sqlite_only  # copies of the database file
async def test_the_command_detects_tampered_copies(
    client: Client, world: World, settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(1111)
    async with sealed_sessions(settings) as sessions:
        total = await build_trail(client, world, sessions)
        async with read_session(sessions) as session:
            entries = await stored_entries(session)
    original = Path(settings.database_url.split("///", 1)[1])
    for number, (kind, tamper) in enumerate([(None, None), *TAMPERS.items(), *TAMPERS.items()]):
        copy = tmp_path / f"copy-{number}"
        shutil.copytree(settings.data_dir, copy, ignore=shutil.ignore_patterns("copy-*"))
        url = f"sqlite+aiosqlite:///{copy / original.relative_to(settings.data_dir)}"
        what = "untouched"
        if tamper is not None:
            engine = make_engine(url)
            try:
                async with write_session(make_sessionmaker(engine)) as session:
                    what = await tamper(session, rng, entries)
            finally:
                await engine.dispose()
        ran = await verify_command(url, copy)
        assert "Traceback" not in ran.err, ran.err
        if tamper is None:
            assert (ran.code, ran.out.splitlines()[0]) == (0, f"ok: {total} entries"), ran
        else:
            assert ran.code == 1 and ran.out.startswith("broken"), (kind, what, ran)
