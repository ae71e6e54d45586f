"""Appending to and verifying the hash-chained audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.bulk import bulk_insert
from server.db.models import AuditEntry
from server.db.session import lock_for_audit
from server.domain.audit_chain import GENESIS, AuditFacts, as_text, entry_hash


async def append(session: AsyncSession, entries: Sequence[AuditFacts]) -> None:
    """Chain the entries after the last one, inside the caller's transaction."""
    if not entries:
        return
    await lock_for_audit(session)
    last = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
        )
    ).first()
    position, prev = (last[0], last[1]) if last else (0, GENESIS)
    rows = []
    for facts in entries:
        position += 1
        before, after = as_text(facts.before), as_text(facts.after)
        current = entry_hash(
            position,
            prev,
            facts.at,
            facts.actor,
            facts.action,
            facts.object_type,
            facts.object_id,
            before,
            after,
            facts.note,
        )
        rows.append(
            {
                "id": position,
                "at": facts.at,
                "actor": facts.actor,
                "action": facts.action,
                "object_type": facts.object_type,
                "object_id": facts.object_id,
                "before": before,
                "after": after,
                "note": facts.note,
                "prev_hash": prev,
                "hash": current,
            }
        )
        prev = current
    await bulk_insert(session, AuditEntry, rows)


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain: the count, or the first broken entry and why."""

    count: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when every entry checked out."""
        return self.broken_at is None


async def verify(session: AsyncSession) -> ChainReport:
    """Walk every entry in order, recomputing each hash."""
    prev, expected_position, count = GENESIS, 1, 0
    result = await session.stream_scalars(
        select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000)
    )
    async for entry in result:
        if entry.id != expected_position:
            return ChainReport(count, entry.id, f"expected entry {expected_position}")
        if entry.prev_hash != prev:
            return ChainReport(count, entry.id, "previous hash does not match")
        recomputed = entry_hash(
            entry.id,
            prev,
            entry.at,
            entry.actor,
            entry.action,
            entry.object_type,
            entry.object_id,
            entry.before,
            entry.after,
            entry.note,
        )
        if recomputed != entry.hash:
            return ChainReport(count, entry.id, "content does not match its hash")
        prev, expected_position, count = entry.hash, expected_position + 1, count + 1
    return ChainReport(count)
