"""Member use cases: create one, look up, search with paging."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Member, Organization
from server.domain.audit_chain import AuditFacts
from server.domain.members import MemberFields
from server.domain.paging import Page, offset
from server.domain.self_checkin import hash_last4
from server.domain.validation import CODE_PATTERN
from server.errors import Conflict, NotFound
from server.services import audit
from server.services.clock import utcnow
from server.services.organizations import org_named_in

MAX_PER_PAGE = 200


@dataclass(frozen=True)
class MemberView:
    """A member as callers see it."""

    member_no: str
    name: str
    org_code: str
    org_name: str
    category: str
    card_code: str | None


def snapshot(fields: MemberFields) -> dict[str, str | None]:
    """The audited form of a member (the ID digits only as "set", never themselves)."""
    audited = {
        "member_no": fields.member_no,
        "name": fields.name,
        "org_code": fields.org_code,
        "category": fields.category,
        "card_code": fields.card_code,
    }
    if fields.id_last4:
        audited["id_last4"] = "set"
    return audited


def _view_query() -> Select[Member, Organization]:
    return select(Member, Organization).join(Organization, Member.org_id == Organization.id)


def _view(member: Member, org: Organization) -> MemberView:
    return MemberView(
        member.member_no, member.name, org.code, org.name, member.category, member.card_code
    )


async def _holder_path(session: AsyncSession, condition: ColumnElement[bool]) -> str | None:
    """The organization path of the member matching `condition`, if there is one."""
    return await session.scalar(
        select(Organization.path)
        .join(Member, Member.org_id == Organization.id)
        .where(condition)
        .limit(1)
    )


async def create_member(
    session: AsyncSession, scope: Scope, actor: str, fields: MemberFields
) -> MemberView:
    """Add one member to an organization inside the scope."""
    org = await org_named_in(session, scope, fields.org_code)
    # Numbers and cards are unique across the city, so a taken one is refused; but a holder
    # outside the scope is never confirmed (nor named): that number "cannot be used".
    holder = await _holder_path(session, Member.member_no == fields.member_no)
    if holder is not None:
        if not scope.covers(holder):
            raise Conflict("This member number cannot be used.")
        raise Conflict(
            "A member with number {member_no} already exists.", member_no=fields.member_no
        )
    if fields.card_code:
        holder = await _holder_path(session, Member.card_code == fields.card_code)
        if holder is not None and not scope.covers(holder):
            raise Conflict("This card code cannot be used.")
        if holder is not None:
            raise Conflict(
                "Card {card_code} already belongs to another member.", card_code=fields.card_code
            )
    now = utcnow()
    session.add(
        Member(
            member_no=fields.member_no,
            name=fields.name,
            org_id=org.id,
            category=fields.category,
            card_code=fields.card_code,
            id_last4_hash=hash_last4(fields.id_last4) if fields.id_last4 else None,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now, actor, "member.create", "member", fields.member_no, None, snapshot(fields)
            )
        ],
    )
    return MemberView(
        fields.member_no, fields.name, org.code, org.name, fields.category, fields.card_code
    )


async def _visible(
    session: AsyncSession, scope: Scope, member_no: str
) -> tuple[Member, Organization]:
    row = (await session.execute(_view_query().where(Member.member_no == member_no))).first()
    if row is None or not scope.covers(row[1].path):
        raise NotFound("No member with number {member_no}.", member_no=member_no)
    return row[0], row[1]


async def get_member(session: AsyncSession, scope: Scope, member_no: str) -> MemberView:
    """One member inside the scope; outside it, the member does not exist (404)."""
    return _view(*await _visible(session, scope, member_no))


async def visible_member_id(session: AsyncSession, scope: Scope, member_no: str) -> int:
    """The database key of one member inside the scope (404 outside it, as get_member)."""
    member, _ = await _visible(session, scope, member_no)
    return member.id


def subtree_ids(scope: Scope, org: Organization | None) -> Select[int] | None:
    """The organization ids a listing is limited to; None when it is the whole tree."""
    if scope.path is None and org is None:
        return None
    ids = select(Organization.id).where(scope.clause(Organization.path))
    if org is not None:
        ids = ids.where(Organization.path.startswith(org.path, autoescape=True))
    return ids


def matching(query: str) -> ColumnElement[bool]:
    """Digits find numbers and cards (by index); anything else is part of a name."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    by_name = Member.name.like(f"%{escaped}%", escape="\\")
    if not CODE_PATTERN.match(query):
        return by_name
    by_code = or_(Member.member_no.startswith(query, autoescape=True), Member.card_code == query)
    return by_code if query.isdigit() else or_(by_code, by_name)


async def search_members(
    session: AsyncSession,
    scope: Scope,
    *,
    query: str = "",
    org: Organization | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[MemberView]:
    """Members inside the scope (and an optional organization's subtree), by number or name."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    ids = subtree_ids(scope, org)
    # "+ 0" keeps the planner walking the member_no index (and stopping after one page)
    # instead of collecting the whole subtree by org_id and sorting it: measured with
    # bench/members.py at 250,000 members, 450 ms → 40 ms.
    condition: ColumnElement[bool] = true() if ids is None else (Member.org_id + 0).in_(ids)
    query = query.strip()
    if query:
        condition = condition & matching(query)
    rows = (
        await session.execute(
            _view_query()
            .where(condition)
            .order_by(Member.member_no)
            .offset(offset(page, per_page))
            .limit(per_page + 1)
        )
    ).all()
    total = None if query else await count_members(session, scope, org)
    items = [_view(member, organization) for member, organization in rows]
    return Page.fetched(items, page, per_page, total)


async def count_members(
    session: AsyncSession, scope: Scope, org: Organization | None = None
) -> int:
    """How many members belong to organizations inside the scope (and the org's subtree)."""
    ids = subtree_ids(scope, org)
    counted: ColumnElement[bool] = true() if ids is None else Member.org_id.in_(ids)
    count = await session.scalar(select(func.count()).select_from(Member).where(counted))
    return int(count or 0)
