"""The monthly report page (月报告): an organization's figures and its children's, three charts,
the XLSX export, and the stored versions with a button that keeps a new one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from aiohttp import web
from babel.dates import format_date
from markupsafe import Markup

from server.auth.access import allow
from server.db.models import Organization
from server.db.session import read_session, write_session
from server.domain import validation as v
from server.domain.charts import Bar, columns, horizontal_bars
from server.domain.reports import FUTURE_MONTH, Figures, Month, month_of, parse_month
from server.domain.vocabulary import READERS, WRITERS
from server.errors import Invalid, NotFound
from server.http.i18n import request_locale, translate_for
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.attendance_export import xlsx_bytes
from server.pages.downloads import download
from server.pages.render import render
from server.pages.report_export import REPORT_COLUMN_LABELS, report_lines, report_sheets
from server.services import organizations, report_snapshots, reports
from server.services.clock import utcnow
from server.services.organizations import TreeNode
from server.services.report_snapshots import SnapshotView
from server.services.reports import HOURS_BIN_EDGES, ReportSeries

BAD_MONTH_PAGE = "The month must be written YYYY-MM, for example 2026-03."
FUTURE_MONTH_PAGE = "There is no report of {month} yet: the month has not begun."
NO_ORGANIZATION = "There is no organization to report on yet."
UNKNOWN_ORGANIZATION = "No organization with code {code}."


@dataclass(frozen=True)
class Report:
    """Everything the page and the export show about one organization and month."""

    org: Organization
    month: Month
    figures: Figures
    series: ReportSeries
    names: dict[str, str]
    tree: list[TreeNode]
    snapshots: list[SnapshotView]


def _current(request: web.Request) -> Month:
    return month_of(utcnow(), request.app[SETTINGS_KEY].tz)


def chosen_month(raw: Mapping[str, str], current: Month) -> Month:
    """The month asked for; none asked for is the previous month (the one to report on)."""
    if not raw.get("month"):
        return current.previous()
    problems = v.Problems()
    month = parse_month(raw, "month", problems)
    if month is None:
        raise Invalid(BAD_MONTH_PAGE, fields=problems)
    if month > current:
        raise Invalid(FUTURE_MONTH_PAGE, month=month.label, fields={"month": FUTURE_MONTH})
    return month


def _chosen_code(raw: Mapping[str, str], tree: list[TreeNode], own: str | None) -> str:
    """The organization asked for; else the caller's own, or the first top-level one."""
    asked = raw.get("org", "")
    if asked:
        problems = v.Problems()
        code = v.code(raw, "org", problems)
        if code is None:
            # A code that cannot exist is answered like one that does not.
            raise NotFound(UNKNOWN_ORGANIZATION, code=asked[:64])
        return code
    if own:
        return own
    if not tree:
        raise NotFound(NO_ORGANIZATION)
    return tree[0].code


async def _report(request: web.Request, *, with_series: bool) -> Report:
    """Read the report asked for in the query string (404 outside the caller's subtree)."""
    principal = request[PRINCIPAL_KEY]
    tz = request.app[SETTINGS_KEY].tz
    month = chosen_month(request.query, _current(request))
    async with read_session(request.app[DB_KEY]) as session:
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
        code = _chosen_code(request.query, tree, principal.org_code)
        org = await organizations.get_org(session, principal.scope, code)
        figures = await reports.report_for(session, org, month, tz)
        series = (
            await reports.report_series(session, org, month, tz, figures.tally.members_total)
            if with_series
            else ReportSeries((), ())
        )
        snapshots = (
            await report_snapshots.list_snapshots(session, principal.scope, code, month)
            if with_series
            else []
        )
    names = {node.code: node.name for node in tree}
    return Report(org, month, figures, series, names, tree, snapshots)


def hours_bin_labels() -> list[str]:
    """0, <8, 8–16, 16–32, 32–56, ≥56 (学时)."""
    edges = HOURS_BIN_EDGES
    middle = [f"{low}–{high}" for low, high in itertools.pairwise(edges)]
    return ["0", f"<{edges[0]}", *middle, f"≥{edges[-1]}"]


def _inline(svg: str) -> Markup:
    """A chart's SVG as it goes into the page: ElementTree wrote it and escaped every text and
    attribute in it, so it is safe markup."""
    return Markup(svg)  # noqa: S704 - built by xml.etree, which escapes all it writes


def _charts(report: Report, gettext: Callable[[str], str], locale: str) -> dict[str, Markup]:
    """The three charts as inline SVG (markup built and escaped by the chart module)."""
    coverage = [
        Bar(report.names.get(c.org, c.org), float(c.coverage_ytd_pct), f"{c.coverage_ytd_pct}%")
        for c in report.figures.children
    ]
    year = report.month.year
    trend = [
        Bar(str(format_date(date(year, number, 1), "MMM", locale=locale)), count, str(count))
        for number, count in enumerate(report.series.trained_by_month, start=1)
    ]
    hours = [
        Bar(label, count, str(count))
        for label, count in zip(hours_bin_labels(), report.series.hours_bins, strict=True)
    ]
    return {
        "coverage": _inline(
            horizontal_bars(
                coverage,
                title=gettext("Coverage this year by child organization"),
                empty=gettext("This organization has no child organizations."),
                maximum=100.0,
            )
        ),
        "trend": _inline(
            columns(
                trend,
                title=gettext("Members trained in each month of the year"),
                empty=gettext("Nobody here has been trained this year yet."),
            )
        ),
        "hours": _inline(
            columns(
                hours if report.figures.tally.members_total else [],
                title=gettext("Members by hours earned this year (credit hours)"),
                empty=gettext("This organization has no members."),
            )
        ),
    }


@allow(*READERS)
async def get_monthly_report(request: web.Request) -> web.Response:
    """GET /reports/monthly?org=CODE&month=YYYY-MM: the report page."""
    principal = request[PRINCIPAL_KEY]
    report = await _report(request, with_series=True)
    gettext = translate_for(request)
    whole, children = report_lines(report.figures, report.names)
    saved = request.query.get("saved", "")
    return render(
        request,
        "report_monthly.html",
        {
            "report": report,
            "org": report.org,
            "month": report.month.label,
            "current_month": _current(request).label,
            "whole": whole,
            "children": children,
            "headings": [
                gettext(label)
                for key, label in REPORT_COLUMN_LABELS.items()
                if key not in ("org", "name", "month")
            ],
            "charts": _charts(report, gettext, request_locale(request)),
            "hours_bins": list(zip(hours_bin_labels(), report.series.hours_bins, strict=True)),
            "may_snapshot": principal.role in WRITERS,
            "saved": int(saved) if saved.isascii() and saved.isdigit() and len(saved) < 6 else None,
        },
    )


@allow(*READERS)
async def get_monthly_report_xlsx(request: web.Request) -> web.Response:
    """GET /reports/monthly.xlsx?org=CODE&month=YYYY-MM: the organization and its children."""
    report = await _report(request, with_series=False)
    gettext = translate_for(request)
    sheets = report_sheets(report.figures, report.names, gettext)
    body = await asyncio.get_running_loop().run_in_executor(None, xlsx_bytes, sheets)
    name = report.names.get(report.org.code, report.org.code)
    full = f"{name}-{gettext('Monthly report')}-{report.month.label}"
    return download(body, "xlsx", f"report-{report.org.code}-{report.month.label}", full)


@allow(*WRITERS)
async def create_report_snapshot(request: web.Request) -> web.Response:
    """POST /reports/monthly/snapshots (org, month): keep a new version, back to the page."""
    form = await request.post()
    raw = {name: value for name, value in form.items() if isinstance(value, str)}
    principal = request[PRINCIPAL_KEY]
    month = chosen_month(raw, _current(request))
    code = raw.get("org", "")
    if not code:
        code = principal.org_code or ""
    if not v.CODE_PATTERN.match(code):
        raise NotFound(UNKNOWN_ORGANIZATION, code=code[:64])
    async with read_session(request.app[DB_KEY]) as session:
        report = await report_snapshots.generate(
            session, principal.scope, code, month, request.app[SETTINGS_KEY].tz
        )
    async with write_session(request.app[DB_KEY]) as session:
        view = await report_snapshots.keep(session, principal.actor, report, utcnow())
    url = request.app.router["report_monthly"].url_for()
    query = {"org": view.org, "month": view.month, "saved": str(view.version)}
    raise web.HTTPSeeOther(str(url.with_query(query)))
