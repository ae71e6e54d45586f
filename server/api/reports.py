"""JSON handlers for the monthly report (月报告) and its stored snapshots."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain import validation as v
from server.domain.reports import ReportQuery, month_of, parse_month, parse_report_query
from server.domain.vocabulary import READERS, WRITERS
from server.http.body import checked, iso, read_json, reply
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import report_snapshots, reports
from server.services.clock import utcnow
from server.services.report_snapshots import SnapshotView


def report_query(request: web.Request, raw: dict[str, Any]) -> ReportQuery:
    """`org` and `month` checked; 422 names each bad one (a month still to come is bad)."""
    current = month_of(utcnow(), request.app[SETTINGS_KEY].tz)
    return checked(parse_report_query(raw, current))


def snapshot_json(view: SnapshotView) -> dict[str, Any]:
    """A stored report in the API's words."""
    return {
        "org": view.org,
        "month": view.month,
        "version": view.version,
        "generated_at": iso(view.generated_at),
        "generated_by": view.generated_by,
        "report": view.report,
    }


@allow(*READERS)
async def get_monthly_report(request: web.Request) -> web.Response:
    """GET /api/v1/reports/monthly?org=CODE&month=YYYY-MM"""
    query = report_query(request, dict(request.query))
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        figures = await reports.monthly(
            session, principal.scope, query.org, query.month, request.app[SETTINGS_KEY].tz
        )
    return reply(figures.as_json())


@allow(*WRITERS)
async def create_report_snapshot(request: web.Request) -> web.Response:
    """POST /api/v1/reports/monthly/snapshots {"org", "month"}: keep a new version."""
    query = report_query(request, await read_json(request))
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        report = await report_snapshots.generate(
            session, principal.scope, query.org, query.month, request.app[SETTINGS_KEY].tz
        )
    async with write_session(request.app[DB_KEY]) as session:
        view = await report_snapshots.keep(session, principal.actor, report, utcnow())
    return reply(snapshot_json(view), status=201)


@allow(*READERS)
async def list_report_snapshots(request: web.Request) -> web.Response:
    """GET /api/v1/reports/monthly/snapshots?org=CODE[&month=YYYY-MM]: newest first."""
    problems = v.Problems()
    org = v.code(request.query, "org", problems)
    month = parse_month(request.query, "month", problems) if request.query.get("month") else None
    org = checked((org, problems))
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await report_snapshots.list_snapshots(session, principal.scope, org, month)
    return reply({"snapshots": [snapshot_json(view) for view in views]})
