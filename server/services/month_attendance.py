"""A month's attendance of an organization's subtree, one row per member and held session:
every result of the subtree's members in the sessions held (finalized or approved) that started
in the month, whoever organized them; paged for the API, streamed for the exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.auth.principal import Scope
from server.db.models import Attendance, Member, Organization, TrainingSession, Venue
from server.domain.paging import Page, offset
from server.domain.reports import Month
from server.domain.vocabulary import HELD_STATES
from server.services.organizations import get_org

MAX_PER_PAGE = 1000
STREAM_BATCH = 2000  # rows fetched at a time while streaming an export


@dataclass(frozen=True)
class ResultRow:
    """One member's result in one session."""

    member_no: str
    name: str
    org_code: str
    org_name: str
    session_id: str
    title: str
    topic_code: str
    starts_at: datetime
    venue: str | None  # the assigned venue's name
    status: str
    reason: str | None
    verified_seconds: int
    credit_hours: Decimal
    flags: tuple[str, ...]


@dataclass(frozen=True)
class MonthScope:
    """Whose month: the organization (checked against the caller's scope) and its bounds."""

    org_code: str
    org_name: str
    path: str
    starts: datetime
    ends: datetime


async def month_scope(
    session: AsyncSession, scope: Scope, org_code: str, month: Month, tz: ZoneInfo
) -> MonthScope:
    """The organization inside the caller's scope (404 outside) and the month's instants."""
    org = await get_org(session, scope, org_code)
    starts, ends = month.bounds(tz)
    return MonthScope(org.code, org.name, org.path, starts, ends)


def _query(where: MonthScope) -> Select[*tuple[Any, ...]]:
    member_org = aliased(Organization)
    return (
        select(
            Member.member_no,
            Member.name,
            member_org.code,
            member_org.name,
            TrainingSession.public_id,
            TrainingSession.title,
            TrainingSession.topic_code,
            TrainingSession.starts_at,
            Venue.name,
            Attendance.status,
            Attendance.reason,
            Attendance.verified_seconds,
            Attendance.credit_hours,
            Attendance.flags,
        )
        .join(Member, Member.id == Attendance.member_id)
        .join(member_org, member_org.id == Member.org_id)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .outerjoin(Venue, Venue.id == Attendance.assigned_venue_id)
        .where(
            member_org.path.startswith(where.path, autoescape=True),
            TrainingSession.state.in_(HELD_STATES),
            TrainingSession.starts_at >= where.starts,
            TrainingSession.starts_at < where.ends,
        )
    )


def _row(values: Any) -> ResultRow:
    (number, name, org_code, org_name, public_id, title, topic, starts_at, venue) = values[:9]
    status, reason, verified, hours, flags = values[9:]
    return ResultRow(
        number,
        name,
        org_code,
        org_name,
        public_id,
        title,
        topic,
        starts_at,
        venue,
        status,
        reason,
        verified,
        hours,
        tuple(sorted(flags or ())),
    )


def _ordered(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    return query.order_by(Member.member_no, TrainingSession.starts_at, TrainingSession.public_id)


async def result_page(
    session: AsyncSession, where: MonthScope, page: int, per_page: int
) -> Page[ResultRow]:
    """One page of the month's rows, by member number, then by the session's start."""
    query = _query(where)
    rows = (
        await session.execute(_ordered(query).offset(offset(page, per_page)).limit(per_page + 1))
    ).all()
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    return Page.fetched([_row(values) for values in rows], page, per_page, int(total or 0))


async def stream_results(
    session: AsyncSession, where: MonthScope
) -> AsyncIterator[list[ResultRow]]:
    """Every row of the month in order, a batch at a time, read as they are written out."""
    result = await session.stream(_ordered(_query(where)).execution_options(yield_per=STREAM_BATCH))
    async for batch in result.partitions(STREAM_BATCH):
        yield [_row(values) for values in batch]
