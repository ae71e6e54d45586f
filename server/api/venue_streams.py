"""JSON handler for a session venue's stream-health samples, paged: why a venue's time was or
was not verified."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.auth.access import allow
from server.db.session import read_session
from server.domain.vocabulary import READERS
from server.errors import Invalid
from server.http.body import iso, reply
from server.http.queries import page_json, query_instant, query_page
from server.keys import DB_KEY, PRINCIPAL_KEY
from server.services.venue_streams import MAX_PER_PAGE, SampleView, venue_samples

PER_PAGE = 200  # 1000 s of a 5 s stats interval


def sample_json(sample: SampleView) -> dict[str, Any]:
    """A stored sample in the API's words."""
    return {
        "at": iso(sample.at),
        "state": sample.state,
        **sample.figures,
        "received_at": iso(sample.received_at),
    }


@allow(*READERS)
async def get_venue_stream(request: web.Request) -> web.Response:
    """GET /api/v1/sessions/{id}/venues/{code}/stream?from=&to=&page=&per_page=: the venue's
    samples of the session from `from` (inclusive) to `to` (exclusive), by time."""
    since, until = query_instant(request, "from"), query_instant(request, "to")
    if since is not None and until is not None and until <= since:
        raise Invalid(
            "The query parameter to must be after from.", fields={"to": "must be after from"}
        )
    page, per_page = query_page(request, per_page=PER_PAGE, most=MAX_PER_PAGE)
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        result = await venue_samples(
            session,
            principal.scope,
            request.match_info["id"],
            request.match_info["code"],
            since=since,
            until=until,
            page=page,
            per_page=per_page,
        )
    return reply(
        {
            "session_id": result.session_id,
            "venue": {
                "code": result.venue.code,
                "name": result.venue.name,
                "role": result.venue.role,
            },
            "from": iso(since),
            "to": iso(until),
            **page_json(
                "samples", [sample_json(item) for item in result.samples.items], result.samples
            ),
        }
    )
