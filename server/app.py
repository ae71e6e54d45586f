"""create_app(settings) -> web.Application: wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.auth.middleware import auth_middleware
from server.auth.passwords import PasswordService
from server.auth.throttle import LoginThrottle
from server.background import workflow_ctx
from server.db.session import make_engine, make_sessionmaker
from server.error_middleware import MAX_BODY, error_middleware
from server.i18n import load_translations
from server.keys import (
    BROADCASTS_KEY,
    BROKER_KEY,
    DB_KEY,
    ENGINE_KEY,
    ERROR_PAGE_KEY,
    METRICS_KEY,
    PASSWORDS_KEY,
    SETTINGS_KEY,
    THROTTLE_KEY,
    TRANSLATIONS_KEY,
    WEBSOCKETS_KEY,
)
from server.live.broker import make_broker
from server.live.sockets import OpenSockets
from server.metrics import Metrics, metrics_middleware
from server.pages.render import render_error_page, setup_templates
from server.routes import setup_routes
from server.rtc.broadcasts import Broadcasts
from server.settings import Settings

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    ),
}


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    """The engine and session factory live exactly as long as the app."""
    engine = make_engine(app[SETTINGS_KEY].database_url)
    app[ENGINE_KEY] = engine
    app[DB_KEY] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live-event broker (Redis when configured); open websockets are closed on exit."""
    app[BROKER_KEY] = make_broker(app[SETTINGS_KEY].redis_url)
    app[WEBSOCKETS_KEY] = OpenSockets()
    yield
    await app[WEBSOCKETS_KEY].close_all()
    await app[BROKER_KEY].close()


async def rtc_ctx(app: web.Application) -> AsyncIterator[None]:
    """The broadcasts on air; every peer connection is closed on exit."""
    broadcasts = Broadcasts(app[SETTINGS_KEY].ice)
    app[BROADCASTS_KEY] = broadcasts
    app[METRICS_KEY].watch_relay(broadcasts)
    yield
    await broadcasts.close_all()


async def passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    """Password hashing with bounded concurrency, created on the app's loop."""
    app[PASSWORDS_KEY] = PasswordService(app[SETTINGS_KEY].hash_concurrency)
    yield


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def create_app(settings: Settings) -> web.Application:
    """Build the server application from its settings."""
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
        client_max_size=MAX_BODY,
    )
    app[SETTINGS_KEY] = settings
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
    app.on_response_prepare.append(_security_headers)
    setup_templates(app)
    setup_routes(app)
    return app
