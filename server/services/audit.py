"""Appending to and verifying the hash-chained audit trail (domain/audit_chain explains the
chain's versions and how an old, unkeyed chain goes on keyed)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, event, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from server.db.base import UTCDateTime
from server.db.bulk import bulk_insert
from server.db.models import AuditEntry, Organization, ReportSnapshot
from server.db.session import AUDIT_SEAL_INFO, audit_seal_of, lock_for_audit
from server.domain.audit_chain import (
    GENESIS,
    KEYED,
    LEGACY,
    Anchor,
    AuditFacts,
    AuditSeal,
    as_text,
    entry_hash,
    keyed_entry_hash,
)
from server.services.audit_anchor import AnchorUnreadable, raise_anchor, read_anchor
from server.services.webhook_outbox import emit_audited

log = logging.getLogger(__name__)
# The head a session's transaction gives the chain once it commits (in the session's `info`).
PENDING_HEAD_INFO = "hetang_audit_pending_head"


async def head(session: AsyncSession) -> Anchor:
    """The chain's head as this transaction sees it: its last entry's position and hash."""
    last = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
        )
    ).first()
    return Anchor(last[0], last[1]) if last else Anchor(0, GENESIS)


async def append(session: AsyncSession, entries: Sequence[AuditFacts]) -> None:
    """Chain the entries after the last one, inside the caller's transaction: keyed, and the
    anchor raised once the transaction commits, when the session's factory has the seal;
    unkeyed (LEGACY) otherwise. The webhook events of these changes join the same transaction."""
    if not entries:
        return
    await lock_for_audit(session)
    seal = audit_seal_of(session)
    last = await head(session)
    position, prev = last.count, last.head
    rows = []
    for facts in entries:
        position += 1
        before, after = as_text(facts.before), as_text(facts.after)
        fields = (facts.at, facts.actor, facts.action, facts.object_type, facts.object_id)
        if seal is not None:
            current = keyed_entry_hash(seal.key, position, prev, *fields, before, after, facts.note)
        else:
            current = entry_hash(position, prev, *fields, before, after, facts.note)
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
                "chain_version": LEGACY if seal is None else KEYED,
            }
        )
        prev = current
    await bulk_insert(session, AuditEntry, rows)
    if seal is not None:
        _anchor_on_commit(session, Anchor(position, prev))
    # The change's signed event callbacks go out from the same transaction (the outbox).
    await emit_audited(session, entries)


def _anchor_on_commit(session: AsyncSession, pending: Anchor) -> None:
    """Raise the anchor to this head once the session's transaction commits (and forget it if
    the transaction rolls back): services/audit_anchor says why not before."""
    sync = session.sync_session
    if not event.contains(sync, "after_commit", _raise_pending_anchor):
        event.listen(sync, "after_commit", _raise_pending_anchor)
        event.listen(sync, "after_soft_rollback", _forget_pending_anchor)
    sync.info[PENDING_HEAD_INFO] = pending


def _raise_pending_anchor(session: Session) -> None:
    pending = session.info.pop(PENDING_HEAD_INFO, None)
    seal = session.info.get(AUDIT_SEAL_INFO)
    if not isinstance(pending, Anchor) or not isinstance(seal, AuditSeal):
        return
    try:
        raise_anchor(seal.anchor_path, pending)
    except (OSError, AnchorUnreadable) as error:
        # The entries are committed; only the anchor lags behind them, which verify reports.
        log.error("the audit anchor was not raised to entry %d: %s", pending.count, error)


def _forget_pending_anchor(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(PENDING_HEAD_INFO, None)


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the trail: every entry and every anchor good, or the first
    problem found — with the entry it concerns, when it concerns one."""

    count: int  # entries that checked out, from the first on
    broken_at: int | None = None  # the first entry found wrong, or the first one missing
    problem: str | None = None
    intact: int | None = None  # entries before broken_at known to be intact, when known
    keyed: int = 0  # of the entries checked, those keyed with the server's key
    anchors: tuple[str, ...] = ()  # what anchored the head (of a report without problems)

    @property
    def ok(self) -> bool:
        """True when every entry and every anchor checked out."""
        return self.problem is None


@dataclass(frozen=True)
class _Witness:
    """A copy of the chain's head kept elsewhere, and where."""

    anchor: Anchor
    source: str


@dataclass(frozen=True)
class _Walked:
    """A walk to the end with no broken entry: how many, how many keyed, the watched hashes."""

    count: int
    keyed: int
    hashes: dict[int, str]


async def verify(session: AsyncSession) -> ChainReport:
    """Walk every entry in order, recomputing each hash (keyed entries with the session's
    seal), then check the head against what anchors it outside the chain: the anchor file
    (with a seal) and every stored monthly report. This is `hetang audit verify`."""
    seal = audit_seal_of(session)
    witnesses = await _snapshot_witnesses(session)
    stored: Anchor | None = None
    if seal is not None:
        try:
            stored = read_anchor(seal.anchor_path)
        except AnchorUnreadable as error:
            return ChainReport(0, problem=f"the anchor file {error}")
        if stored is not None:
            witnesses.insert(0, _Witness(stored, f"the anchor file {seal.anchor_path}"))
    walked = await _walk(session, seal, {witness.anchor.count for witness in witnesses})
    if isinstance(walked, ChainReport):
        return walked
    for witness in witnesses:
        problem = _against(walked, witness)
        if problem is not None:
            return problem
    if seal is not None and stored is None and walked.keyed:
        return ChainReport(
            walked.count,
            problem=(
                f"the anchor file {seal.anchor_path} is missing, though {walked.keyed} entries "
                "are keyed: entries deleted at the end would not show (after restoring a "
                "backup, the next audited change writes it again)"
            ),
            keyed=walked.keyed,
        )
    anchors = [w.source for w in witnesses[:1] if stored is not None]
    if len(witnesses) > len(anchors):
        reports = len(witnesses) - len(anchors)
        anchors.append(f"{reports} stored monthly report{'' if reports == 1 else 's'}")
    return ChainReport(walked.count, keyed=walked.keyed, anchors=tuple(anchors))


def _against(walked: _Walked, witness: _Witness) -> ChainReport | None:
    """The problem with the chain that a witness shows, if any."""
    anchor = witness.anchor
    if anchor.count > walked.count:
        return ChainReport(
            walked.count,
            walked.count + 1,
            f"entries {walked.count + 1}–{anchor.count} are missing: {witness.source} says the "
            f"trail had {anchor.count} entries",
            intact=walked.count,
            keyed=walked.keyed,
        )
    if walked.hashes.get(anchor.count) != anchor.head:
        return ChainReport(
            walked.count,
            anchor.count,
            f"it is not the entry {witness.source} anchors (the trail was rewritten)",
            keyed=walked.keyed,
        )
    return None


async def _snapshot_witnesses(session: AsyncSession) -> list[_Witness]:
    """The head each stored monthly report kept, highest first."""
    rows = await session.execute(
        select(
            ReportSnapshot.audit_count,
            ReportSnapshot.audit_head,
            Organization.code,
            ReportSnapshot.month,
            ReportSnapshot.version,
        )
        .join(Organization, ReportSnapshot.org_id == Organization.id)
        .where(ReportSnapshot.audit_count.is_not(None))
        .order_by(ReportSnapshot.audit_count.desc(), ReportSnapshot.id)
    )
    return [
        _Witness(Anchor(count or 0, head or ""), f"the stored report of {org} {month} v{version}")
        for count, head, org, month, version in rows
    ]


async def _walk(
    session: AsyncSession, seal: AuditSeal | None, watched: set[int]
) -> _Walked | ChainReport:
    """Every entry in order: its position, version, time, link and hash; the first broken one
    as a report, or the counts and the hashes at the watched positions."""
    prev, count, keyed = GENESIS, 0, 0
    hashes = {0: GENESIS}
    read_time = _time_reader(session)
    columns = (
        AuditEntry.id,
        AuditEntry.chain_version,
        type_coerce(AuditEntry.at, String).label("at"),  # read below, entry by entry
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.object_type,
        AuditEntry.object_id,
        AuditEntry.before,
        AuditEntry.after,
        AuditEntry.note,
        AuditEntry.prev_hash,
        AuditEntry.hash,
    )
    result = await session.stream(
        select(*columns).order_by(AuditEntry.id).execution_options(yield_per=2000)
    )
    async for row in result:
        problem = _entry_problem(row, count + 1, prev, keyed > 0, seal, read_time)
        if problem is not None:
            return ChainReport(count, row.id, problem, intact=count, keyed=keyed)
        prev, count = row.hash, count + 1
        if row.chain_version == KEYED:
            keyed += 1
        if count in watched:
            hashes[count] = row.hash
    return _Walked(count, keyed, hashes)


def _entry_problem(
    row: Row[*tuple[Any, ...]],
    position: int,
    prev: str,
    after_keyed: bool,
    seal: AuditSeal | None,
    read_time: Callable[[Any], datetime | None],
) -> str | None:
    """What is wrong with the entry read at this position, if anything."""
    if row.id != position:
        return f"expected entry {position}"
    if row.chain_version not in (LEGACY, KEYED):
        return f"unknown chain version {row.chain_version!r}"
    at = read_time(row.at)
    if at is None:
        return f"its time cannot be read ({row.at!r})"
    if row.prev_hash != prev:
        return "previous hash does not match"
    fields = (row.actor, row.action, row.object_type, row.object_id, row.before, row.after)
    if row.chain_version == LEGACY:
        if after_keyed:
            return "an unkeyed entry after keyed ones"
        recomputed = entry_hash(position, prev, at, *fields, row.note)
    elif seal is None:
        return "it is keyed, and this check was given no key"
    else:
        recomputed = keyed_entry_hash(seal.key, position, prev, at, *fields, row.note)
    if recomputed != row.hash:
        hint = " (or the server's secret key changed)" if row.chain_version == KEYED else ""
        return f"content does not match its hash{hint}"
    return None


def _time_reader(session: AsyncSession) -> Callable[[Any], datetime | None]:
    """Reads a stored time as the model does, or None when it cannot be read (the column is
    read as it is stored, so one bad value names its entry instead of ending the walk)."""
    dialect = session.get_bind().dialect
    process = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)

    def read(raw: Any) -> datetime | None:
        try:
            value = process(raw) if process is not None else raw
        except (ValueError, TypeError, AttributeError):
            return None
        return value if isinstance(value, datetime) else None

    return read
