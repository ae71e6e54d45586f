"""JSON handlers of the agent API (PROTOCOL.md), authenticated by the venue token."""

from __future__ import annotations

from aiohttp import web

from server.api.body import checked, iso, read_json, reply
from server.auth.access import agent
from server.db.session import write_session
from server.domain import validation as v
from server.domain.venues import HEARTBEAT_S, STATS_S
from server.keys import AGENT_VENUE_KEY, DB_KEY
from server.services import agents
from server.services.clock import utcnow


def _parse_hello(raw: dict[str, object]) -> tuple[tuple[str, str] | None, v.Problems]:
    problems = v.Problems()
    version = v.text(raw, "agent_version", problems, max_len=64)
    hostname = v.text(raw, "hostname", problems, max_len=255)
    if version is None or hostname is None:
        return None, problems
    return (version, hostname), problems


@agent
async def agent_hello(request: web.Request) -> web.Response:
    """POST /api/v1/agent/hello"""
    version, hostname = checked(_parse_hello(await read_json(request)))
    venue = request[AGENT_VENUE_KEY]
    now = utcnow()
    async with write_session(request.app[DB_KEY]) as session:
        await agents.hello(session, venue, agent_version=version, hostname=hostname, now=now)
    return reply(
        {
            "venue": {"code": venue.code, "name": venue.name},
            "server_time": iso(now),
            "heartbeat_s": HEARTBEAT_S,
            "stats_s": STATS_S,
        }
    )
