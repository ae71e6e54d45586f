"""Query values of a listing, with the documented errors for bad ones: its page (`page`,
`per_page`) and time bounds (ISO 8601 with an offset); and one page in the API's words."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from server.domain.paging import Page
from server.domain.times import parse_instant
from server.errors import Invalid
from server.http.body import query_int

MAX_PAGE = 1_000_000
# A query string's "+" reads as a space: "…T09:00:00+08:00" arrives as "…T09:00:00 08:00".
SPACED_OFFSET = re.compile(r" ([0-9]{2}(:?[0-9]{2})?)$")


def query_page_number(request: web.Request, name: str = "page") -> int:
    """A page number from the query (from 1; the first when absent)."""
    return query_int(request, name, 1, low=1, high=MAX_PAGE)


def query_page(request: web.Request, *, per_page: int, most: int) -> tuple[int, int]:
    """The query's `page` (from 1) and `per_page` (1..most; `per_page` when absent)."""
    page = query_page_number(request)
    return page, query_int(request, "per_page", per_page, low=1, high=most)


def page_json(name: str, items: list[Any], page: Page[Any]) -> dict[str, Any]:
    """A page in the API's words: its items under `name`, and where it stands."""
    return {
        name: items,
        "page": page.page,
        "per_page": page.per_page,
        "has_next": page.has_next,
        "total": page.total,
    }


def query_instant(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time with an offset (any offset; aware UTC out), None when not given."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    value = parse_instant(SPACED_OFFSET.sub(r"+\1", raw))
    if value is None:
        raise Invalid(
            "The query parameter {name} must be an ISO 8601 time with an offset.",
            name=name,
            fields={name: "must be an ISO 8601 time with an offset"},
        )
    return value
