"""Training archive pages: a member's printable registration form (培训登记表) for a year, and
the committee cabinet (一党委一专柜) with its CSV and XLSX files."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.archive import CABINET_STATE_LABELS
from server.domain.times import parse_year
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR, READERS
from server.errors import NotFound
from server.http.body import query_year, this_year
from server.http.i18n import translate_for
from server.http.reads import read_cabinet, read_registration_form
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.attendance_export import csv_bytes, xlsx_bytes
from server.pages.cabinet_export import CABINET_COLUMN_LABELS, cabinet_sheet
from server.pages.downloads import download
from server.pages.render import render
from server.services import registration_forms
from server.services.archive import Cabinet


@allow(*READERS)
async def get_registration_form(request: web.Request) -> web.Response:
    """GET /members/{member_no}/archive/{year}: the A4 form to print and file; a year that is
    no year of FIRST_YEAR..LAST_YEAR is no address (404)."""
    raw = request.match_info["year"]
    year = parse_year(raw)
    if year is None:
        raise NotFound("There is no registration form for the year {year}.", year=raw[:16])
    form = await read_registration_form(request, year)
    return render(request, "archive_form.html", {"form": form})


@allow(*READERS)
async def get_cabinet(request: web.Request) -> web.Response:
    """GET /organizations/{code}/cabinet?year=YYYY: every member's hours against the
    requirement, each linking to their registration form."""
    found = await read_cabinet(request)
    gettext = translate_for(request)
    return render(
        request,
        "cabinet.html",
        {
            "cabinet": found,
            "cabinet_state_labels": CABINET_STATE_LABELS,
            "headings": {key: gettext(label) for key, label in CABINET_COLUMN_LABELS.items()},
            "this_year": this_year(request),
            "min_year": FIRST_YEAR,
            "max_year": LAST_YEAR,
        },
    )


@allow(*READERS)
async def get_cabinet_forms(request: web.Request) -> web.Response:
    """GET /organizations/{code}/cabinet/forms?year=YYYY: the registration form (培训登记表) of
    every member of the committee's subtree in one document, a form to a page, to print and
    file in its cabinet (一党委一专柜)."""
    year = query_year(request)
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        found, forms = await registration_forms.registration_forms(
            session,
            principal.scope,
            request.match_info["code"],
            year,
            request.app[SETTINGS_KEY].tz,
        )
    return render(request, "cabinet_forms.html", {"cabinet": found, "forms": forms})


def _download(request: web.Request, found: Cabinet, body: bytes, kind: str) -> web.Response:
    full = f"{found.org_name}-{translate_for(request)('Training archive cabinet')}-{found.year}"
    return download(body, kind, f"cabinet-{found.org_code}-{found.year}", full)


@allow(*READERS)
async def get_cabinet_csv(request: web.Request) -> web.Response:
    """GET /organizations/{code}/cabinet.csv?year=YYYY: the cabinet's rows, UTF-8 with a BOM."""
    found = await read_cabinet(request)
    return _download(request, found, csv_bytes(cabinet_sheet(found, translate_for(request))), "csv")


@allow(*READERS)
async def get_cabinet_xlsx(request: web.Request) -> web.Response:
    """GET /organizations/{code}/cabinet.xlsx?year=YYYY: the cabinet's rows as a workbook."""
    found = await read_cabinet(request)
    sheet = cabinet_sheet(found, translate_for(request))
    # A committee of thousands of members takes a moment to write: keep the event loop free.
    body = await asyncio.get_running_loop().run_in_executor(None, xlsx_bytes, [sheet])
    return _download(request, found, body, "xlsx")
