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


async def _store(
    session: AsyncSession, root: Organization, month: Month, actor: str, tz: ZoneInfo, now: datetime
) -> SnapshotView:
    """Compute the report and keep it as the next version (audited writers are serialized, so
    two callers never pick the same version; the unique constraint would refuse it anyway)."""
    await lock_for_audit(session)
    figures = (await report_for(session, root, month, tz)).as_json()
    latest = await session.scalar(
        select(func.max(ReportSnapshot.version)).where(
            ReportSnapshot.org_id == root.id, ReportSnapshot.month == month.label
        )
    )
    row = ReportSnapshot(
        org_id=root.id,
        month=month.label,
        version=(latest or 0) + 1,
        generated_at=now,
        generated_by=actor,
        figures=json.dumps(figures, ensure_ascii=False, separators=(",", ":")),
    )
    session.add(row)
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                "report.snapshot",
                "report_snapshot",
                str(row.id),
                None,
                {"org": root.code, "month": month.label, "version": row.version, **figures},
            )
        ],
    )
    return _view(row, root.code)


async def create_snapshot(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    org_code: str,
    month: Month,
    tz: ZoneInfo,
    now: datetime,
) -> SnapshotView:
    """POST reports/monthly/snapshots: generate and keep a new version (earlier ones stay)."""
    root = await get_org(session, scope, org_code)
    return await _store(session, root, month, actor, tz, now)


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


async def snapshots_due(session: AsyncSession, tz: ZoneInfo, now: datetime) -> bool:
    """True when the previous month still lacks a stored report of some top-level organization
    (a cheap read the clock makes every round before it takes a writer's lock)."""
    return bool(await _unreported_roots(session, month_of(now, tz).previous(), tz))


async def store_due_snapshots(
    session: AsyncSession, actor: str, tz: ZoneInfo, now: datetime
) -> list[str]:
    """The monthly run ("on the 1st, for the previous month"): keep a report of the previous
    month for every top-level organization lacking one. Idempotent: checked again under the
    writers' lock, so running it twice, or from two processes, stores each report once.
    Returns the codes of the organizations reported."""
    month = month_of(now, tz).previous()
    await lock_for_audit(session)
    roots = await _unreported_roots(session, month, tz)
    for root in roots:
        await _store(session, root, month, actor, tz, now)
    return [root.code for root in roots]
