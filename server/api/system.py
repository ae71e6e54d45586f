"""Health check and the caller's own identity."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.auth import tokens
from server.auth.access import allow, public
from server.db.session import read_session
from server.domain.vocabulary import ROLES, SESSION_STATES
from server.errors import Forbidden
from server.http.body import reply
from server.http.client_address import client_address, is_loopback_address, is_loopback_host
from server.keys import DB_KEY, METRICS_KEY, PRINCIPAL_KEY, SETTINGS_KEY
from server.services import agents, health
from server.services.clock import utcnow


@public
async def get_health(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the database answers."""
    async with read_session(request.app[DB_KEY]) as session:
        await health.database_answers(session)
    return reply({"status": "ok"})


@allow(*ROLES)
async def get_me(request: web.Request) -> web.Response:
    """GET /api/v1/me"""
    principal = request[PRINCIPAL_KEY]
    return reply(
        {
            "username": principal.username,
            "display_name": principal.display_name,
            "role": principal.role,
            "org_code": principal.org_code,
        }
    )


def _from_this_machine(request: web.Request) -> bool:
    """Asked from this machine and addressed to it by a loopback name. The address alone is not
    enough: a web page whose own name is rebound to 127.0.0.1 (DNS rebinding) reaches the port
    from the viewer's machine, but its requests carry its name in Host."""
    return is_loopback_address(client_address(request)) and is_loopback_host(
        request.headers.get("Host", "")
    )


@public
async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text. Only from this machine, unless HETANG_METRICS_TOKEN is set
    and presented as a bearer token."""
    token = request.app[SETTINGS_KEY].metrics_token
    presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    allowed = tokens.equal(presented, token) if token and presented else _from_this_machine(request)
    if not allowed:
        raise Forbidden("Metrics are served to this machine or with the metrics token only.")
    metrics = request.app[METRICS_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        online, states = await agents.live_counts(session, utcnow())
    metrics.venues_online.set(online)
    for state in SESSION_STATES:
        metrics.sessions_by_state.labels(state).set(states.get(state, 0))
    return web.Response(
        body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
