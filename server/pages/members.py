"""Member pages: search and paging, one member's details and yearly training record, adding one,
importing a CSV file."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session, write_session
from server.domain.member_csv import template_csv
from server.domain.members import REQUIRED_HOURS, parse_member
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR, MEMBER_CATEGORIES, READERS
from server.errors import ApiError, Invalid
from server.http.body import checked, query_int, query_year, this_year
from server.http.i18n import translate_for
from server.keys import DB_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.pages.forms import FormProblem, problem_of, read_form, redirect_with_notice
from server.pages.render import render
from server.services import members, organizations
from server.services.attendance_view import member_record
from server.services.member_import import ImportRejected, import_members_file
from server.services.member_matches import MATCH_CAP, count_matches

PER_PAGE = 50
TEMPLATE_NAME = quote("党员导入模板.csv")


async def _list_page(
    request: web.Request,
    form: dict[str, str] | None = None,
    problem: FormProblem | None = None,
    bad_lines: list[tuple[int, str]] | None = None,
    bad_count: int = 0,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    query = request.query.get("q", "").strip()[:100]
    org_code = request.query.get("org", "").strip()
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    async with read_session(request.app[DB_KEY]) as session:
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
        org = await organizations.get_org(session, principal.scope, org_code) if org_code else None
        found = await members.search_members(
            session, principal.scope, query=query, org=org, page=page, per_page=PER_PAGE
        )
        matched = await count_matches(session, principal.scope, query, org) if query else None
    return render(
        request,
        "members.html",
        {
            "result": found,
            "q": query,
            "org_code": org.code if org else "",
            "org_name": org.name if org else "",
            "tree": tree,
            "categories": MEMBER_CATEGORIES,
            "form": form or {},
            "problem": problem,
            "bad_lines": bad_lines or [],
            "bad_count": bad_count,
            "matched": matched,
            "match_cap": MATCH_CAP,
        },
        status=problem.status if problem else 200,
    )


@allow(*READERS)
async def get_members(request: web.Request) -> web.Response:
    """GET /members?q=&org=&page=; GET /members?template=csv: the import template."""
    if request.query.get("template") == "csv":
        return get_import_template()
    return await _list_page(request)


def get_import_template() -> web.Response:
    """The member import template: the Chinese headers, UTF-8 with a BOM (so Excel reads it)."""
    return web.Response(
        body=template_csv(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{TEMPLATE_NAME}"},
    )


@allow(*READERS)
async def get_member(request: web.Request) -> web.Response:
    """GET /members/{member_no}?year=: the member and their training record for a year;
    outside the caller's scope the member does not exist."""
    principal = request[PRINCIPAL_KEY]
    tz = request.app[SETTINGS_KEY].tz
    year = query_year(request)
    number = request.match_info["member_no"]
    async with read_session(request.app[DB_KEY]) as session:
        view = await members.get_member(session, principal.scope, number)
        record = await member_record(session, principal.scope, number, year, tz)
    return render(
        request,
        "member.html",
        {
            "member": view,
            "required_hours": REQUIRED_HOURS[view.category],
            "record": record,
            "this_year": this_year(request),
            "min_year": FIRST_YEAR,
            "max_year": LAST_YEAR,
        },
    )


@allow("admin")
async def create_member(request: web.Request) -> web.Response:
    """POST /members: add one member, then show them."""
    form = await read_form(request)
    principal = request[PRINCIPAL_KEY]
    try:
        fields = checked(parse_member(form))
        async with write_session(request.app[DB_KEY]) as session:
            view = await members.create_member(session, principal.scope, principal.actor, fields)
    except ApiError as error:
        return await _list_page(request, form, problem_of(request, "member", error))
    redirect_with_notice(
        request, "member", "member_created", {"member_no": view.member_no}, member_no=view.member_no
    )


@allow("admin")
async def import_members(request: web.Request) -> web.Response:
    """POST /members/import (multipart, field "file", up to 64 MiB): all rows or none. aiohttp
    has already read the file part by part into a temporary file; it is read from there."""
    upload = (await request.post()).get("file")
    principal = request[PRINCIPAL_KEY]
    try:
        if not isinstance(upload, web.FileField) or not upload.filename:
            raise Invalid("Choose a CSV file to upload.", fields={"file": "is required"})
        async with write_session(request.app[DB_KEY]) as session:
            result = await import_members_file(
                session, principal.scope, principal.actor, upload.file
            )
    except ImportRejected as rejected:
        gettext = translate_for(request)
        lines = [(problem.line, problem.render(gettext)) for problem in rejected.problems]
        problem = problem_of(request, "import", rejected)
        return await _list_page(request, None, problem, lines, rejected.count)
    except ApiError as error:
        return await _list_page(request, None, problem_of(request, "import", error))
    redirect_with_notice(
        request,
        "members",
        "members_imported",
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
