"""Every typed app and request key, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from server.auth.passwords import PasswordService
    from server.auth.principal import AgentVenue, Principal
    from server.auth.throttle import LoginThrottle
    from server.errors import ApiError
    from server.http.i18n import Translations
    from server.live.broker import Broker
    from server.live.leader import Leadership
    from server.live.rate_limits import RateLimits
    from server.live.sockets import OpenSockets
    from server.metrics import Metrics
    from server.rtc.broadcasts import Broadcasts
    from server.rtc.relay_link import Relay, RelayPlace
    from server.settings import Settings

    ErrorPageRenderer = Callable[[web.Request, ApiError], Awaitable[web.StreamResponse]]

SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("settings")
ENGINE_KEY: web.AppKey[AsyncEngine] = web.AppKey("engine")
DB_KEY: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("db")
TRANSLATIONS_KEY: web.AppKey[Translations] = web.AppKey("translations")
PASSWORDS_KEY: web.AppKey[PasswordService] = web.AppKey("passwords")
THROTTLE_KEY: web.AppKey[LoginThrottle] = web.AppKey("throttle")
ERROR_PAGE_KEY: web.AppKey[ErrorPageRenderer] = web.AppKey("error_page")
BROKER_KEY: web.AppKey[Broker] = web.AppKey("broker")
WEBSOCKETS_KEY: web.AppKey[OpenSockets] = web.AppKey("websockets")
METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics")
BROADCASTS_KEY: web.AppKey[Broadcasts] = web.AppKey("broadcasts")  # only where the relay runs
RELAY_KEY: web.AppKey[Relay] = web.AppKey("relay")  # every process
RELAY_PLACE_KEY: web.AppKey[RelayPlace] = web.AppKey("relay_place")
LEADERSHIP_KEY: web.AppKey[Leadership] = web.AppKey("leadership")
RATE_LIMITS_KEY: web.AppKey[RateLimits] = web.AppKey("rate_limits")

REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id")
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal")
AGENT_VENUE_KEY: web.RequestKey[AgentVenue] = web.RequestKey("agent_venue")
LOGIN_TOKEN_KEY: web.RequestKey[str] = web.RequestKey("login_token")
