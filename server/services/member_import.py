"""Importing members from a CSV file of any length: all rows or none, with one audit entry per
changed member. The file is read twice, batch by batch, never held whole: first every line is
checked (against the rules and the database), then, only when none was bad, everything is written
in the caller's transaction."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.bulk import bulk_insert
from server.db.models import Member, Organization
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.csv_rows import (
    BIG5_FILE,
    HEAD_BYTES,
    big5_header,
    guess_encoding,
    text_lines,
)
from server.domain.member_csv import TRADITIONAL_HEADERS, MemberRows, RowProblem
from server.domain.members import MemberFields
from server.errors import Invalid
from server.services import audit
from server.services.clock import utcnow
from server.services.members import snapshot

LOOKUP_CHUNK = 5000
BATCH = 5000
MAX_PROBLEMS = 1000  # listed; the count says how many there were in all

Progress = Callable[[str, int, int], None]
Current = dict[str, Any]  # a stored member: id, org_path, snapshot


@dataclass(frozen=True)
class ImportResult:
    """How many members the import created, changed and found already as given."""

    created: int
    updated: int
    unchanged: int


class ImportRejected(Invalid):
    """The file had bad rows; nothing was imported (the first MAX_PROBLEMS are listed)."""

    def __init__(self, problems: Sequence[RowProblem], count: int | None = None) -> None:
        total = len(problems) if count is None else count
        super().__init__("{count} rows have problems; nothing was imported.", count=total)
        self.problems = sorted(problems, key=lambda problem: problem.line)[:MAX_PROBLEMS]
        self.count = total


@dataclass
class _Check:
    """What the checking pass found: problems, cards to let go of first, how many of each."""

    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    orgs: dict[str, tuple[int, str]] = field(default_factory=dict)
    released: dict[int, str] = field(default_factory=dict)  # member id → card it lets go of
    taken: list[tuple[int, str, str, str]] = field(default_factory=list)  # line, card, holder
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, problems: Iterable[RowProblem]) -> None:
        for problem in problems:
            self.problem_count += 1
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(problem)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def import_members_csv(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    data: bytes,
    progress: Progress | None = None,
) -> ImportResult:
    """A file already in memory (the CLI, the demo city): see import_members_file."""
    return await import_members_file(session, scope, actor, io.BytesIO(data), progress)


async def import_members_file(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    file: IO[bytes],
    progress: Progress | None = None,
) -> ImportResult:
    """Check every line of a seekable binary file, then write all members in the caller's
    transaction, or raise ImportRejected having written nothing."""
    head = file.read(HEAD_BYTES)
    guess = guess_encoding(head)
    if guess.codec is None:
        raise ImportRejected([RowProblem(1, guess.problem or "")])
    size = file.seek(0, io.SEEK_END)
    check = _Check()
    with _rows(file, guess.codec) as rows:
        header = rows.header()
        if header:
            if big5_header(head, TRADITIONAL_HEADERS):
                header = [RowProblem(1, BIG5_FILE)]
            raise ImportRejected(header)
        for batch, problems in rows.batches(BATCH):
            check.add(problems)
            await _check_batch(session, scope, batch, check)
            if progress:
                progress("checked", min(file.tell(), size), size)
        # A card held by a member outside the file is taken; one whose holder is in the file
        # is being given up (the same card twice in the file is a repeat, reported above).
        check.add(
            _taken_problem(line, card, holder, path, scope)
            for line, card, holder, path in check.taken
            if not rows.has_number(holder)
        )
    if check.problem_count:
        raise ImportRejected(check.problems, check.problem_count)
    await _write(session, actor, file, guess.codec, check, progress)
    return ImportResult(check.created, check.updated, check.unchanged)


@contextmanager
def _rows(file: IO[bytes], codec: str) -> Iterator[MemberRows]:
    """The file's lines from the start, decoded; the file itself stays open."""
    with text_lines(file, codec) as text:
        yield MemberRows(text, "GB18030" if codec == "gb18030" else "UTF-8")


def _taken_problem(line: int, card: str, holder: str, path: str, scope: Scope) -> RowProblem:
    if scope.covers(path):
        return RowProblem(
            line,
            "Card {value} already belongs to member {other}.",
            {"value": card, "other": holder},
        )
    # Never name a member outside the caller's scope.
    return RowProblem(line, "Card {value} already belongs to another member.", {"value": card})


async def _check_batch(
    session: AsyncSession, scope: Scope, batch: list[tuple[int, MemberFields]], check: _Check
) -> None:
    """Check a batch's rows against the database: organizations, numbers, cards."""
    await _load_orgs(session, {fields.org_code for _, fields in batch}, check.orgs)
    existing = await _members_by_number(session, [fields.member_no for _, fields in batch])
    holders = await _card_holders(session, [f.card_code for _, f in batch if f.card_code])
    for line, fields in batch:
        org = check.orgs.get(fields.org_code)
        if org is None or not scope.covers(org[1]):
            problem = "Organization {value} does not exist."
            check.add([RowProblem(line, problem, {"value": fields.org_code})])
            continue
        current = existing.get(fields.member_no)
        if current is not None and not scope.covers(current["org_path"]):
            # Never confirm that the number exists elsewhere (it cannot be taken).
            problem = "Member number {value} cannot be used."
            check.add([RowProblem(line, problem, {"value": fields.member_no})])
            continue
        holder, holder_path = holders.get(fields.card_code or "", (None, ""))
        if holder is not None and holder != fields.member_no:
            check.taken.append((line, fields.card_code or "", holder, holder_path))
        if current is None:
            check.created += 1
        elif _differs(current, fields):
            check.updated += 1
            before = current["snapshot"]["card_code"]
            if before is not None and before != fields.card_code:
                check.released[current["id"]] = before
        else:
            check.unchanged += 1


def _differs(current: Current, fields: MemberFields) -> bool:
    return bool(changed_fields(current["snapshot"], snapshot(fields))[0])


async def _load_orgs(
    session: AsyncSession, codes: set[str], found: dict[str, tuple[int, str]]
) -> None:
    """Add the organizations not looked up yet (code → id, path) to `found`."""
    missing = sorted(codes - found.keys())
    for chunk in _chunks(missing, LOOKUP_CHUNK):
        result = await session.execute(
            select(Organization.code, Organization.id, Organization.path).where(
                Organization.code.in_(chunk)
            )
        )
        found.update({code: (org_id, path) for code, org_id, path in result})


async def _members_by_number(session: AsyncSession, numbers: list[str]) -> dict[str, Current]:
    found: dict[str, Current] = {}
    for chunk in _chunks(numbers, LOOKUP_CHUNK):
        result = await session.execute(
            select(
                Member.id,
                Member.member_no,
                Member.name,
                Member.category,
                Member.card_code,
                Organization.code,
                Organization.path,
            )
            .join(Organization, Member.org_id == Organization.id)
            .where(Member.member_no.in_(chunk))
        )
        for member_id, number, name, category, card, org_code, org_path in result:
            found[number] = {
                "id": member_id,
                "org_path": org_path,
                "snapshot": snapshot(MemberFields(number, name, org_code, category, card)),
            }
    return found


async def _card_holders(session: AsyncSession, cards: list[str]) -> dict[str, tuple[str, str]]:
    """Card → (member number, organization path) of its current holder."""
    found: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(cards, LOOKUP_CHUNK):
        result = await session.execute(
            select(Member.card_code, Member.member_no, Organization.path)
            .join(Organization, Member.org_id == Organization.id)
            .where(Member.card_code.in_(chunk))
        )
        found.update({card: (number, path) for card, number, path in result if card})
    return found


async def _write(
    session: AsyncSession,
    actor: str,
    file: IO[bytes],
    codec: str,
    check: _Check,
    progress: Progress | None,
) -> None:
    """The second pass: every row was checked; write them batch by batch."""
    now = utcnow()
    done, total = 0, check.created + check.updated
    # Cards move in two steps, so neither a swap nor a card handed on to a new member trips the
    # unique constraint: every member whose card changes lets go of it before anything is written.
    for chunk in _chunks(list(check.released), LOOKUP_CHUNK):
        await session.execute(update(Member).where(Member.id.in_(chunk)).values(card_code=None))
    with _rows(file, codec) as rows:
        rows.header()
        for batch, _ in rows.batches(BATCH):
            existing = await _members_by_number(session, [f.member_no for _, f in batch])
            for current in existing.values():  # as it was before its card was let go of
                card = check.released.get(current["id"])
                if card is not None:
                    current["snapshot"]["card_code"] = card
            creates = [f for _, f in batch if f.member_no not in existing]
            updates = [
                (existing[f.member_no], f)
                for _, f in batch
                if f.member_no in existing and _differs(existing[f.member_no], f)
            ]
            await _write_batch(session, actor, now, check.orgs, creates, updates)
            done += len(creates) + len(updates)
            if progress:
                progress("written", done, total)


async def _write_batch(
    session: AsyncSession,
    actor: str,
    now: Any,
    orgs: dict[str, tuple[int, str]],
    creates: list[MemberFields],
    updates: list[tuple[Current, MemberFields]],
) -> None:
    facts: list[AuditFacts] = []
    await bulk_insert(
        session,
        Member,
        [
            {
                "member_no": f.member_no,
                "name": f.name,
                "org_id": orgs[f.org_code][0],
                "category": f.category,
                "card_code": f.card_code,
                "created_at": now,
                "updated_at": now,
            }
            for f in creates
        ],
    )
    facts.extend(
        AuditFacts(now, actor, "member.import", "member", f.member_no, None, snapshot(f))
        for f in creates
    )
    if updates:
        await session.execute(
            update(Member),
            [
                {
                    "id": current["id"],
                    "name": f.name,
                    "org_id": orgs[f.org_code][0],
                    "category": f.category,
                    "card_code": f.card_code,
                    "updated_at": now,
                }
                for current, f in updates
            ],
        )
    for current, f in updates:
        before, after = changed_fields(current["snapshot"], snapshot(f))
        facts.append(AuditFacts(now, actor, "member.import", "member", f.member_no, before, after))
    await audit.append(session, facts)
