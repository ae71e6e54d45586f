"""Importing members from CSV: all rows or none, with one audit entry per changed member."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.bulk import bulk_insert
from server.db.models import Member, Organization
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.member_csv import RowProblem, parse_members_csv
from server.domain.members import MemberFields
from server.errors import Invalid
from server.services import audit
from server.services.clock import utcnow
from server.services.members import snapshot

LOOKUP_CHUNK = 5000
WRITE_CHUNK = 5000

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportResult:
    """How many members the import created, changed and found already as given."""

    created: int
    updated: int
    unchanged: int


class ImportRejected(Invalid):
    """The file had bad rows; nothing was imported."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__("{count} rows have problems; nothing was imported.", count=len(problems))
        self.problems = list(problems)


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
    """Check every line, then write all members in the caller's transaction, or raise."""
    parsed = parse_members_csv(data)
    problems = list(parsed.problems)
    rows = parsed.rows
    if progress:
        progress("checked", len(rows), len(rows) + len(problems))
    orgs = await _orgs_by_code(session, {fields.org_code for _, fields in rows})
    existing = await _members_by_number(session, [fields.member_no for _, fields in rows])
    card_holders = await _card_holders(
        session, [fields.card_code for _, fields in rows if fields.card_code]
    )
    file_cards = {fields.member_no: fields.card_code for _, fields in rows}
    creates: list[MemberFields] = []
    updates: list[tuple[int, dict[str, Any], MemberFields]] = []
    unchanged = 0
    for line, fields in rows:
        org = orgs.get(fields.org_code)
        if org is None or not scope.covers(org[1]):
            problems.append(
                RowProblem(line, "Organization {value} does not exist.", {"value": fields.org_code})
            )
            continue
        current = existing.get(fields.member_no)
        if current is not None and not scope.covers(current["org_path"]):
            problems.append(
                RowProblem(
                    line,
                    # Never confirm that the number exists elsewhere (it cannot be taken).
                    "Member number {value} cannot be used.",
                    {"value": fields.member_no},
                )
            )
            continue
        holder, holder_path = card_holders.get(fields.card_code or "", (None, ""))
        # Taken, unless its holder is in this file and gives the card up.
        if (
            holder not in (None, fields.member_no)
            and file_cards.get(holder or "", fields.card_code) == fields.card_code
        ):
            if scope.covers(holder_path):
                problem = RowProblem(
                    line,
                    "Card {value} already belongs to member {other}.",
                    {"value": fields.card_code or "", "other": holder or ""},
                )
            else:  # never name a member outside the caller's scope
                problem = RowProblem(
                    line,
                    "Card {value} already belongs to another member.",
                    {"value": fields.card_code or ""},
                )
            problems.append(problem)
            continue
        if current is None:
            creates.append(fields)
        elif _differs(current, fields):
            updates.append((current["id"], current, fields))
        else:
            unchanged += 1
    if problems:
        problems.sort(key=lambda problem: problem.line)
        raise ImportRejected(problems)
    await _write(session, actor, orgs, creates, updates, progress)
    return ImportResult(len(creates), len(updates), unchanged)


def _differs(current: dict[str, Any], fields: MemberFields) -> bool:
    return bool(changed_fields(current["snapshot"], snapshot(fields))[0])


async def _orgs_by_code(session: AsyncSession, codes: set[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(codes), LOOKUP_CHUNK):
        result = await session.execute(
            select(Organization.code, Organization.id, Organization.path).where(
                Organization.code.in_(chunk)
            )
        )
        found.update({code: (org_id, path) for code, org_id, path in result})
    return found


async def _members_by_number(
    session: AsyncSession, numbers: list[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
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
    orgs: dict[str, tuple[int, str]],
    creates: list[MemberFields],
    updates: list[tuple[int, dict[str, Any], MemberFields]],
    progress: Progress | None,
) -> None:
    now = utcnow()
    facts: list[AuditFacts] = []
    done, total = 0, len(creates) + len(updates)
    # Cards move in two steps, so neither a swap nor a card handed on to a new member trips the
    # unique constraint: every member whose card changes lets go of it before anything is written.
    moving = [
        member_id
        for member_id, current, f in updates
        if current["snapshot"]["card_code"] != f.card_code
    ]
    for chunk in _chunks(moving, WRITE_CHUNK):
        await session.execute(update(Member).where(Member.id.in_(chunk)).values(card_code=None))
    for chunk in _chunks(creates, WRITE_CHUNK):
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
                for f in chunk
            ],
        )
        facts.extend(
            AuditFacts(now, actor, "member.import", "member", f.member_no, None, snapshot(f))
            for f in chunk
        )
        done += len(chunk)
        if progress:
            progress("written", done, total)
    for chunk in _chunks(updates, WRITE_CHUNK):
        await session.execute(
            update(Member),
            [
                {
                    "id": member_id,
                    "name": f.name,
                    "org_id": orgs[f.org_code][0],
                    "category": f.category,
                    "card_code": f.card_code,
                    "updated_at": now,
                }
                for member_id, _, f in chunk
            ],
        )
        for _, current, f in chunk:
            before, after = changed_fields(current["snapshot"], snapshot(f))
            facts.append(
                AuditFacts(now, actor, "member.import", "member", f.member_no, before, after)
            )
        done += len(chunk)
        if progress:
            progress("written", done, total)
    await audit.append(session, facts)
