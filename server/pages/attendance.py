"""The review page of a finalized session, its filters, and its CSV and XLSX exports."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.labels import FLAG_LABELS, REVIEW_LABELS, STATUS_LABELS
from server.domain.paging import Page
from server.domain.stream_timeline import TIMELINE_STATE_LABELS
from server.domain.validation import CODE_PATTERN
from server.domain.vocabulary import READERS, VENUE_READERS, WRITERS
from server.errors import Conflict
from server.http.i18n import list_joiner, translate_for
from server.http.queries import query_page_number
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.pages.attendance_export import (
    Sheet,
    csv_bytes,
    member_sheet,
    up_percent,
    venue_sheet,
    window_seconds,
    xlsx_bytes,
)
from server.pages.downloads import download
from server.pages.forms import problem_of
from server.pages.render import render
from server.pages.stream_timeline import legend_states, timeline_rows
from server.services import recordings, session_views
from server.services.attendance_view import MemberLine, SessionAttendance, session_attendance
from server.services.self_checkin_review import review_lines
from server.services.venue_streams import branch_timelines

MEMBERS_PER_PAGE = 100  # a 467-member table is five pages, not a 20,000 px one
MAKEUP = "makeup"  # the preset: everybody absent or partial, to invite to a make-up class
MAKEUP_STATUSES = frozenset({"absent", "partial"})
STATUS_FILTERS = (*STATUS_LABELS, MAKEUP)


@dataclass(frozen=True)
class Filters:
    """Which members the table and the exports show (from the query string)."""

    status: str = ""
    flag: str = ""
    venue: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filters:
        """The filters of a query string; a value that is not one of the choices is ignored."""
        status = query.get("status", "")
        flag = query.get("flag", "")
        venue = query.get("venue", "")
        return cls(
            status if status in STATUS_FILTERS else "",
            flag if flag in FLAG_LABELS else "",
            venue if CODE_PATTERN.match(venue) else "",
        )

    @property
    def makeup(self) -> bool:
        """Whether this is the make-up training list."""
        return self.status == MAKEUP

    @property
    def active(self) -> bool:
        """Whether anything is filtered out."""
        return bool(self.status or self.flag or self.venue)

    def query(self) -> dict[str, str]:
        """The filters as a query string (blanks left out)."""
        pairs = {"status": self.status, "flag": self.flag, "venue": self.venue}
        return {name: value for name, value in pairs.items() if value}

    def keep(self, line: MemberLine) -> bool:
        """Whether a member's line passes every filter."""
        if self.makeup:
            if line.status not in MAKEUP_STATUSES:
                return False
        elif self.status and line.status != self.status:
            return False
        if self.flag and self.flag not in line.flags:
            return False
        return not self.venue or self.venue == line.assigned_venue or self.venue in line.venues


async def _attendance(request: web.Request) -> SessionAttendance:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        return await session_attendance(
            session, principal.scope, request.match_info["id"], principal.venue_scope
        )


@allow(*VENUE_READERS)
async def get_attendance(request: web.Request) -> web.Response:
    """GET /sessions/{id}/attendance?status=&flag=&venue=: the combined result, for review, with
    each branch venue's stream timeline."""
    filters = Filters.of(request.query)
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    try:
        async with read_session(request.app[DB_KEY]) as session:
            result = await session_attendance(
                session, principal.scope, public_id, principal.venue_scope
            )
            timelines = await branch_timelines(session, principal.scope, public_id)
            replayable = principal.role in WRITERS and await recordings.replayable(
                session, principal.scope, public_id
            )
            review = await review_lines(
                session, principal.scope, public_id, {venue.code for venue in result.venues}
            )
    except Conflict as error:
        return await _not_finalized(request, error)
    shown = [line for line in result.members if filters.keep(line)]
    page = query_page_number(request)
    members = Page.of(shown, page, MEMBERS_PER_PAGE)
    window = window_seconds(result)
    venue_rows = [
        (venue, venue.up_seconds // 60, up_percent(venue.up_seconds, window))
        for venue in sorted(result.venues, key=lambda venue: (venue.role != "main", venue.code))
    ]
    timelines_shown = timeline_rows(result, timelines, translate_for(request))
    return render(
        request,
        "session_attendance.html",
        {
            "result": result,
            "filters": filters,
            "members": members,
            "shown_count": len(shown),
            "may_read_members": principal.role in READERS,
            "may_plan_makeup": replayable,
            "venue_rows": venue_rows,
            "venue_names": {venue.code: venue.name for venue in result.venues},
            "status_filters": STATUS_FILTERS,
            "joiner": list_joiner(request),
            "timelines": timelines_shown,
            "stream_verified": timelines.verification_required,
            "timeline_states": legend_states(timelines_shown),
            "timeline_state_labels": TIMELINE_STATE_LABELS,
            "review": review,
            "review_labels": REVIEW_LABELS,
        },
    )


async def _not_finalized(request: web.Request, error: Conflict) -> web.Response:
    """Before finalization the page says when attendance appears (409)."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        view = await session_views.get_session(session, principal.scope, request.match_info["id"])
    return render(
        request,
        "session_attendance.html",
        {"result": None, "session": view, "problem": problem_of(request, "attendance", error)},
        status=error.status,
    )


def _member_sheet(request: web.Request, result: SessionAttendance) -> Sheet:
    filters = Filters.of(request.query)
    shown = [line for line in result.members if filters.keep(line)]
    names = {venue.code: venue.name for venue in result.venues}
    return member_sheet(shown, translate_for(request), list_joiner(request), names)


def _download(
    request: web.Request, result: SessionAttendance, body: bytes, kind: str
) -> web.Response:
    full = f"{result.title}-{translate_for(request)('Attendance')}-{result.id}"
    return download(body, kind, f"attendance-{result.id}", full)


@allow(*VENUE_READERS)
async def get_attendance_csv(request: web.Request) -> web.Response:
    """GET /sessions/{id}/attendance.csv: the member table as filtered, UTF-8 with a BOM."""
    result = await _attendance(request)
    body = csv_bytes(_member_sheet(request, result))
    return _download(request, result, body, "csv")


@allow(*VENUE_READERS)
async def get_attendance_xlsx(request: web.Request) -> web.Response:
    """GET /sessions/{id}/attendance.xlsx: the member table as filtered, and the venues."""
    result = await _attendance(request)
    sheets = [_member_sheet(request, result), venue_sheet(result, translate_for(request))]
    # Building a workbook of thousands of rows takes a moment: keep the event loop free.
    body = await asyncio.get_running_loop().run_in_executor(None, xlsx_bytes, sheets)
    return _download(request, result, body, "xlsx")
