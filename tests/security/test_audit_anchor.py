"""Security review, issue 11, finding 8: the audit chain's anchors and its upgrade path. The anchor
file only moves forward, even with several processes raising it at once; a missing or unreadable
anchor is reported; a stored monthly report catches a truncation that an older anchor file would
hide; entries written before keying are bound by the first keyed one; an unkeyed entry after
keyed ones is refused; and a database written before keying upgrades to a chain that verifies
and goes on keyed."""

from __future__ import annotations

import asyncio
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from server.auth.principal import WHOLE_TREE
from server.db.migrate import downgrade, upgrade
from server.db.models import AuditEntry
from server.db.session import read_session, write_session
from server.domain.audit_chain import ANCHOR_FILE, GENESIS, KEYED, LEGACY, Anchor, entry_hash
from server.services import audit, users
from server.services.audit_anchor import raise_anchor, read_anchor
from server.settings import Settings
from tests.support.audit_trail import ROOT, TZ, sealed_sessions, verify_command
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World

RAISER = """
import random, sys
from pathlib import Path
from server.domain.audit_chain import Anchor
from server.services.audit_anchor import raise_anchor
counts = list(range(1, 301))
random.Random(int(sys.argv[2])).shuffle(counts)
for count in counts:
    raise_anchor(Path(sys.argv[1]), Anchor(count, f"{count:064x}"))
"""


async def org(client: Client, world: World, code: str, parent: str = "a") -> None:
    """An organization made through the API (a keyed entry, written by the app)."""
    body = {"code": code, "name": f"党委{code}", "level": "committee", "parent_code": parent}
    answer = await client.post("/api/v1/organizations", json=body, headers=world.auth("admin"))
    assert answer.status == 201, await answer.text()


async def snapshot(client: Client, world: World) -> None:
    """A stored monthly report of county a for this month."""
    body = {"org": "a", "month": f"{datetime.now(TZ):%Y-%m}"}
    answer = await client.post(
        "/api/v1/reports/monthly/snapshots", json=body, headers=world.auth("admin")
    )
    assert answer.status == 201, await answer.text()


async def entry_count(sessions: Db) -> int:
    async with read_session(sessions) as session:
        return (await audit.head(session)).count


async def test_the_anchor_file_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "data" / ANCHOR_FILE
    # Four processes raise it to every count from 1 to 300, each in its own shuffled order.
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", RAISER, str(path), str(seed), cwd=ROOT
        )
        for seed in range(4)
    ]
    assert [await process.wait() for process in processes] == [0, 0, 0, 0]
    assert read_anchor(path) == Anchor(300, f"{300:064x}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not raise_anchor(path, Anchor(299, "f" * 64))
    assert not raise_anchor(path, Anchor(300, "f" * 64))
    assert raise_anchor(path, Anchor(301, "e" * 64))
    assert read_anchor(path) == Anchor(301, "e" * 64)
    assert sorted(p.name for p in path.parent.iterdir()) == [ANCHOR_FILE, f"{ANCHOR_FILE}.lock"]


async def test_a_missing_or_unreadable_anchor_is_reported(
    client: Client, world: World, settings: Settings
) -> None:
    await org(client, world, "n1")
    anchor = settings.data_dir / ANCHOR_FILE
    async with sealed_sessions(settings) as sessions:
        total = await entry_count(sessions)
        assert read_anchor(anchor) == Anchor(total, (await head_hash(sessions)))
        ran = await verify_command(settings.database_url, settings.data_dir)
        assert (ran.code, ran.out) == (0, f"ok: {total} entries\n"), ran
        assert "keyed: 1, from before keying:" in ran.err
        assert f"head anchored by: the anchor file {anchor}" in ran.err

        kept = anchor.read_text()
        anchor.unlink()
        async with read_session(sessions) as session:
            report = await audit.verify(session)
        assert not report.ok and report.broken_at is None
        assert f"the anchor file {anchor} is missing" in str(report.problem)
        ran = await verify_command(settings.database_url, settings.data_dir)
        assert ran.code == 1 and ran.out.startswith("broken: the anchor file"), ran

        for garbage in ("", "{}", '{"count": 3}', "[1, 2]", '{"count": -1, "head": "x"}'):
            anchor.write_text(garbage)
            async with read_session(sessions) as session:
                report = await audit.verify(session)
            assert not report.ok and f"{anchor} is not an anchor" in str(report.problem), garbage
        anchor.write_text(kept)
        async with read_session(sessions) as session:
            assert (await audit.verify(session)).ok


async def head_hash(sessions: Db) -> str:
    async with read_session(sessions) as session:
        return (await audit.head(session)).head


async def test_a_stored_report_catches_a_truncation_an_older_anchor_would_hide(
    client: Client, world: World, settings: Settings
) -> None:
    anchor = settings.data_dir / ANCHOR_FILE
    await org(client, world, "n1")
    older = anchor.read_text()
    async with sealed_sessions(settings) as sessions:
        kept = await entry_count(sessions)
        await org(client, world, "n2")
        await org(client, world, "n3")
        await snapshot(client, world)  # keeps the head: kept + 2 entries
        await org(client, world, "n4")
        async with read_session(sessions) as session:
            report = await audit.verify(session)
        assert report.ok and "1 stored monthly report" in report.anchors
        # Delete every entry after `kept`, and put back the anchor file of that moment.
        async with write_session(sessions) as session:
            await session.execute(delete(AuditEntry).where(AuditEntry.id > kept))
        anchor.write_text(older)
        async with read_session(sessions) as session:
            report = await audit.verify(session)
    assert not report.ok and report.broken_at == kept + 1
    assert f"entries {kept + 1}–{kept + 2} are missing: the stored report of a" in str(
        report.problem
    )


async def test_rewriting_entries_from_before_keying_breaks_the_first_keyed_one(
    client: Client, world: World, settings: Settings
) -> None:
    async with sealed_sessions(settings) as sessions:
        legacy = await entry_count(sessions)  # the world's, written without the key
        await org(client, world, "n1")
        await org(client, world, "n2")
        async with read_session(sessions) as session:
            report = await audit.verify(session)
            entries = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert report.ok and (report.count, report.keyed) == (legacy + 2, 2)
        assert [e.chain_version for e in entries] == [LEGACY] * legacy + [KEYED] * 2
        assert entries[legacy].prev_hash == entries[legacy - 1].hash  # bound to the old head

        # Entry 3 edited, and every entry from before keying rehashed the old, unkeyed way.
        prev = entries[1].hash
        async with write_session(sessions) as session:
            for entry in entries[2:legacy]:
                actor = "forger" if entry.id == 3 else entry.actor
                fields: tuple[Any, ...] = (entry.at, actor, entry.action, entry.object_type)
                fields += (entry.object_id, entry.before, entry.after, entry.note)
                new = entry_hash(entry.id, prev, *fields)
                await session.execute(
                    update(AuditEntry)
                    .where(AuditEntry.id == entry.id)
                    .values(actor=actor, prev_hash=prev, hash=new)
                    .execution_options(synchronize_session=False)
                )
                prev = new
        async with read_session(sessions) as session:
            report = await audit.verify(session)
    assert not report.ok
    assert (report.broken_at, report.problem) == (legacy + 1, "previous hash does not match")


async def test_an_unkeyed_entry_after_keyed_ones_is_refused(
    client: Client, db: Db, world: World, settings: Settings
) -> None:
    await org(client, world, "n1")
    async with write_session(db) as session:  # the tests' own factory has no seal
        await users.create_user(
            session,
            WHOLE_TREE,
            "test",
            username="late",
            display_name="late",
            role="admin",
            org_code=None,
            password_hash=None,
        )
    async with sealed_sessions(settings) as sessions:
        total = await entry_count(sessions)
        async with read_session(sessions) as session:
            report = await audit.verify(session)
    assert (report.broken_at, report.problem) == (total, "an unkeyed entry after keyed ones")
    # Without the key, keyed entries cannot be checked at all.
    async with read_session(db) as session:
        report = await audit.verify(session)
    assert report.problem == "it is keyed, and this check was given no key"


@pytest.mark.sqlite_only  # migrations down and up again
async def test_a_database_from_before_keying_upgrades_and_goes_on_keyed(
    client: Client, db: Db, world: World, settings: Settings
) -> None:
    async with read_session(db) as session:
        written = list((await session.execute(select(AuditEntry.id, AuditEntry.hash))).all())
    await asyncio.to_thread(downgrade, settings.database_url, "0006")  # as it was before keying
    await asyncio.to_thread(upgrade, settings.database_url)
    async with sealed_sessions(settings) as sessions:
        async with read_session(sessions) as session:
            report = await audit.verify(session)
            versions = set((await session.scalars(select(AuditEntry.chain_version))).all())
        assert versions == {LEGACY}
        assert report.ok and (report.count, report.keyed, report.anchors) == (len(written), 0, ())
        assert read_anchor(settings.data_dir / ANCHOR_FILE) is None

        await org(client, world, "n1")
        await snapshot(client, world)
        async with read_session(sessions) as session:
            report = await audit.verify(session)
            first_keyed = await session.scalar(
                select(AuditEntry.prev_hash).where(AuditEntry.id == len(written) + 1)
            )
            last = await audit.head(session)
    assert report.ok and (report.count, report.keyed) == (len(written) + 2, 2)
    assert first_keyed == written[-1].hash != GENESIS
    assert read_anchor(settings.data_dir / ANCHOR_FILE) == last
