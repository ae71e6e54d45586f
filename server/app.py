"""create_app(settings) -> web.Application: wiring only."""

from __future__ import annotations

from types import MappingProxyType

from aiohttp import web

from server.auth.middleware import auth_middleware
from server.auth.throttle import LoginThrottle
from server.contexts import (
    broker_ctx,
    db_ctx,
    passwords_ctx,
    rtc_ctx,
    webhooks_ctx,
    workflow_ctx,
)
from server.http.body_limit import MAX_BODY, body_limit_middleware
from server.http.deadlines import body_deadline_middleware
from server.http.error_middleware import error_middleware
from server.http.i18n import load_translations
from server.keys import (
    ERROR_PAGE_KEY,
    METRICS_KEY,
    RELAY_PLACE_KEY,
    SETTINGS_KEY,
    THROTTLE_KEY,
    TRANSLATIONS_KEY,
)
from server.metrics import Metrics, metrics_middleware
from server.pages.render import render_error_page, setup_templates
from server.routes import setup_routes
from server.rtc.relay_link import RelayPlace
from server.settings import Settings

SECURITY_HEADERS = MappingProxyType(
    {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'"
        ),
    }
)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def create_app(settings: Settings, relay: RelayPlace | None = None) -> web.Application:
    """Build the server application from its settings; `relay` says where the relay runs when
    this is one of several workers (by default: here)."""
    app = web.Application(
        middlewares=[
            metrics_middleware,
            body_limit_middleware,  # before the error middleware, which names the limit
            error_middleware,
            body_deadline_middleware,
            auth_middleware,
        ],
        client_max_size=MAX_BODY,
        # aiohttp closes a connection that has no complete request head within its keep-alive
        # timeout (counted from the connection or from the last answer): idle and trickled
        # heads alike. Handler arguments reach every server of this app: `hetang serve`'s, tests'.
        handler_args={"keepalive_timeout": settings.keepalive_timeout_s},
    )
    app[SETTINGS_KEY] = settings
    app[RELAY_PLACE_KEY] = relay or RelayPlace()
    app[METRICS_KEY] = Metrics()
    app[TRANSLATIONS_KEY] = load_translations()
    app[THROTTLE_KEY] = LoginThrottle(
        settings.login_max_failures_per_user,
        settings.login_max_failures_per_address,
        settings.login_window_s,
    )
    app[ERROR_PAGE_KEY] = render_error_page
    app.cleanup_ctx.append(db_ctx)
    app.cleanup_ctx.append(passwords_ctx)
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(rtc_ctx)
    app.cleanup_ctx.append(workflow_ctx)
    app.cleanup_ctx.append(webhooks_ctx)
    app.on_response_prepare.append(_security_headers)
    setup_templates(app)
    setup_routes(app)
    return app
