"""Health check, metrics (and Janus's events into them), and the caller's own identity."""

from __future__ import annotations

import base64

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.auth import tokens
from server.auth.access import allow, public
from server.db.session import read_session
from server.domain.janus_events import read_events
from server.domain.vocabulary import ROLES, SESSION_STATES
from server.errors import Forbidden, Invalid
from server.http.body import read_json_any, reply
from server.http.client_address import client_address, is_loopback_address, is_loopback_host
from server.keys import DB_KEY, METRICS_KEY, PRINCIPAL_KEY, RELAY_KEY, SETTINGS_KEY
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


def _metrics_allowed(request: web.Request) -> bool:
    """From this machine, or with HETANG_METRICS_TOKEN: as a bearer token, or as the password of
    HTTP basic authentication (what Janus's event handler sends, `backend_pwd`)."""
    token = request.app[SETTINGS_KEY].metrics_token
    presented = _presented_secret(request.headers.get("Authorization", ""))
    return tokens.equal(presented, token) if token and presented else _from_this_machine(request)


def _presented_secret(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


@public
async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text. Only from this machine, unless HETANG_METRICS_TOKEN is set
    and presented as a bearer token."""
    if not _metrics_allowed(request):
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


@public
async def post_janus_events(request: web.Request) -> web.Response:
    """POST /janus/events: Janus's event handler (sampleevh) reports, counted into /metrics.
    Admitted as /metrics is: from this machine, or with the metrics token (basic auth)."""
    if not _metrics_allowed(request):
        raise Forbidden("Janus events are taken from this machine or with the metrics token only.")
    try:
        figures = read_events(await read_json_any(request))
    except ValueError as error:
        raise Invalid("The body must be Janus events: {problem}", problem=str(error)) from None
    request.app[METRICS_KEY].record_janus(figures)
    if figures.reports:
        await request.app[RELAY_KEY].media_reports(figures.reports)  # the venues' layers
    return reply({"events": sum(figures.events.values())})
