"""A month's attendance of an organization's subtree — every member's result in every session
held that month — as paged JSON, and as CSV (streamed as it is read) or XLSX files."""

from __future__ import annotations

import asyncio
from contextlib import closing
from typing import Any

from aiohttp import web

from server.api.reports import report_query
from server.auth.access import allow
from server.db.session import read_session
from server.domain.members import hours_number
from server.domain.vocabulary import READERS
from server.http.body import iso, reply
from server.http.i18n import list_joiner, translate_for
from server.http.queries import page_json, query_page
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.attendance_export import BOM, XLSX_TYPE, content_disposition
from server.pages.month_export import cells, csv_text, headings, workbook
from server.services.month_attendance import (
    MAX_PER_PAGE,
    MonthScope,
    ResultRow,
    month_scope,
    result_page,
    stream_results,
)

PER_PAGE = 200


def result_json(row: ResultRow) -> dict[str, Any]:
    """One result in the API's words."""
    return {
        "member_no": row.member_no,
        "name": row.name,
        "org_code": row.org_code,
        "org_name": row.org_name,
        "session_id": row.session_id,
        "title": row.title,
        "topic_code": row.topic_code,
        "starts_at": iso(row.starts_at),
        "assigned_venue": row.venue,
        "status": row.status,
        "reason": row.reason,
        "verified_seconds": row.verified_seconds,
        "credit_hours": hours_number(row.credit_hours),
        "flags": list(row.flags),
    }


async def _where(request: web.Request) -> MonthScope:
    query = report_query(request, dict(request.query))
    async with read_session(request.app[DB_KEY]) as session:
        return await month_scope(
            session,
            request[PRINCIPAL_KEY].scope,
            query.org,
            query.month,
            request.app[SETTINGS_KEY].tz,
        )


def _names(request: web.Request, where: MonthScope, kind: str) -> str:
    month = where.starts.astimezone(request.app[SETTINGS_KEY].tz).strftime("%Y-%m")
    full = f"{where.org_name}-{month}-{translate_for(request)('Attendance')}.{kind}"
    return content_disposition(f"attendance-{where.org_code}-{month}.{kind}", full)


@allow(*READERS)
async def get_month_results(request: web.Request) -> web.Response:
    """GET /api/v1/attendance?org=&month=&page=&per_page="""
    page, per_page = query_page(request, per_page=PER_PAGE, most=MAX_PER_PAGE)
    where = await _where(request)
    async with read_session(request.app[DB_KEY]) as session:
        found = await result_page(session, where, page, per_page)
    month = where.starts.astimezone(request.app[SETTINGS_KEY].tz).strftime("%Y-%m")
    return reply(
        {
            "org": where.org_code,
            "month": month,
            **page_json("results", [result_json(row) for row in found.items], found),
        }
    )


def _streamed(
    request: web.Request, where: MonthScope, kind: str, media_type: str
) -> web.StreamResponse:
    return web.StreamResponse(
        headers={
            "Content-Type": media_type,
            "Content-Disposition": _names(request, where, kind),
            "Cache-Control": "no-store",
        }
    )


@allow(*READERS)
async def get_month_results_csv(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/attendance.csv?org=&month=: UTF-8 with a BOM, written as it is read, so the
    first line leaves at once however large the month."""
    where = await _where(request)
    gettext, tz, joiner = translate_for(request), request.app[SETTINGS_KEY].tz, list_joiner(request)
    response = _streamed(request, where, "csv", "text/csv; charset=utf-8")
    await response.prepare(request)
    await response.write((BOM + csv_text([headings(gettext)])).encode("utf-8"))
    async with read_session(request.app[DB_KEY]) as session:
        async for batch in stream_results(session, where):
            lines = [cells(row, gettext, tz, joiner) for row in batch]
            await response.write(csv_text(lines).encode("utf-8"))
    await response.write_eof()
    return response


@allow(*READERS)
async def get_month_results_xlsx(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/attendance.xlsx?org=&month=: the same rows as a workbook, zipped and sent as
    it is read like the CSV (the rows' XML is made and deflated off the event loop)."""
    where = await _where(request)
    gettext, tz, joiner = translate_for(request), request.app[SETTINGS_KEY].tz, list_joiner(request)
    loop = asyncio.get_running_loop()
    book = workbook(gettext("Attendance"), headings(gettext))
    response = _streamed(request, where, "xlsx", XLSX_TYPE)
    await response.prepare(request)
    with closing(book):
        await response.write(book.start())
        async with read_session(request.app[DB_KEY]) as session:
            async for batch in stream_results(session, where):
                lines = [cells(row, gettext, tz, joiner) for row in batch]
                chunk = await loop.run_in_executor(None, book.rows, lines)
                if chunk:
                    await response.write(chunk)
        await response.write(book.finish())
    await response.write_eof()
    return response
