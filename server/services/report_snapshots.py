"""Stored monthly reports: each generation is a new version (a submitted report is never
rewritten), made on demand or by the clock for last month."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import Organization, ReportSnapshot
from server.db.session import lock_for_audit
from server.domain.audit_chain import AuditFacts
from server.domain.reports import Month, month_of
from server.services import audit
from server.services.organizations import get_org
from server.services.reports import report_for


@dataclass(frozen=True)
class SnapshotView:
    """A stored report as callers see it."""

    org: str
    month: str
    version: int
    generated_at: datetime
    generated_by: str
    report: dict[str, Any]


def _view(row: ReportSnapshot, org_code: str) -> SnapshotView:
    return SnapshotView(
        org_code,
        row.month,
        row.version,
        row.generated_at,
        row.generated_by,
        json.loads(row.figures),
    )


@dataclass(frozen=True)
class Generated:
    """A report just computed, not yet kept."""

    org_id: int
    org_code: str
    month: Month
    figures: dict[str, Any]


async def generate_for(
    session: AsyncSession, root: Organization, month: Month, tz: ZoneInfo
) -> Generated:
    """Compute the report of an organization already known to the caller (a read: a city's
    report takes a second or two, and no writer should wait for it)."""
    figures = (await report_for(session, root, month, tz)).as_json()
    return Generated(root.id, root.code, month, figures)


async def generate(
    session: AsyncSession, scope: Scope, org_code: str, month: Month, tz: ZoneInfo
) -> Generated:
    """Compute the report of an organization in the scope (404 outside it)."""
    return await generate_for(session, await get_org(session, scope, org_code), month, tz)


async def _latest_version(session: AsyncSession, report: Generated) -> int | None:
    return await session.scalar(
        select(func.max(ReportSnapshot.version)).where(
            ReportSnapshot.org_id == report.org_id, ReportSnapshot.month == report.month.label
        )
    )


async def keep(session: AsyncSession, actor: str, report: Generated, now: datetime) -> SnapshotView:
    """Keep a generated report as the next version of its month (audited writers are
    serialized, so two callers never pick the same version; the unique constraint would refuse
    it anyway)."""
    await lock_for_audit(session)
    latest = await _latest_version(session, report)
    return await _insert(session, actor, report, now, (latest or 0) + 1)


async def keep_first(
    session: AsyncSession, actor: str, report: Generated, now: datetime
) -> SnapshotView | None:
    """Keep the month's first version, or nothing (None) when it has one: the monthly run
    stores each report once, however many rounds or processes run it."""
    await lock_for_audit(session)
    if await _latest_version(session, report) is not None:
        return None
    return await _insert(session, actor, report, now, 1)


async def _insert(
    session: AsyncSession, actor: str, report: Generated, now: datetime, version: int
) -> SnapshotView:
    # The trail's head before the report's own entry: a copy of the anchor (callers hold the
    # audit lock, so no entry comes between).
    trail = await audit.head(session)
    row = ReportSnapshot(
        org_id=report.org_id,
        month=report.month.label,
        version=version,
        generated_at=now,
        generated_by=actor,
        figures=json.dumps(report.figures, ensure_ascii=False, separators=(",", ":")),
        audit_count=trail.count,
        audit_head=trail.head,
    )
    session.add(row)
    await session.flush()
    after = {
        "org": report.org_code,
        "month": report.month.label,
        "version": row.version,
        **report.figures,
    }
    await audit.append(
        session,
        [AuditFacts(now, actor, "report.snapshot", "report_snapshot", str(row.id), None, after)],
    )
    return _view(row, report.org_code)


async def list_snapshots(
    session: AsyncSession, scope: Scope, org_code: str, month: Month | None
) -> list[SnapshotView]:
    """GET reports/monthly/snapshots: the organization's stored reports (of one month, or of
    every month), newest month first and within a month newest version first."""
    root = await get_org(session, scope, org_code)
    query = select(ReportSnapshot).where(ReportSnapshot.org_id == root.id)
    if month is not None:
        query = query.where(ReportSnapshot.month == month.label)
    rows = (
        await session.execute(
            query.order_by(ReportSnapshot.month.desc(), ReportSnapshot.version.desc())
        )
    ).scalars()
    return [_view(row, root.code) for row in rows]


async def _unreported_roots(
    session: AsyncSession, month: Month, tz: ZoneInfo
) -> list[Organization]:
    """Top-level organizations that existed when the month ended and have no stored report
    of it (an organization made later has no report of a month before it)."""
    _, month_end = month.bounds(tz)
    stored = select(ReportSnapshot.id).where(
        ReportSnapshot.org_id == Organization.id, ReportSnapshot.month == month.label
    )
    query = (
        select(Organization)
        .where(
            Organization.parent_id.is_(None),
            Organization.created_at < month_end,
            ~stored.exists(),
        )
        .order_by(Organization.code)
    )
    return list((await session.execute(query)).scalars().all())


async def due_reports(
    session: AsyncSession, tz: ZoneInfo, now: datetime
) -> tuple[Month, list[Organization]]:
    """The monthly run ("on the 1st, for the previous month"): the previous month and the
    top-level organizations still lacking a stored report of it (a cheap read the clock makes
    every round)."""
    month = month_of(now, tz).previous()
    return month, await _unreported_roots(session, month, tz)
