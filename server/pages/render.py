"""Rendering pages: the jinja2 environment, translations, time zones and the error page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from babel.dates import format_datetime, get_timezone_location

from server.auth.middleware import csrf_token_for
from server.domain.labels import (
    AGENT_STATE_LABELS,
    CATEGORY_LABELS,
    FLAG_LABELS,
    LEVEL_LABELS,
    REASON_LABELS,
    ROLE_LABELS,
    SESSION_STATE_LABELS,
    STATUS_LABELS,
    VENUE_ROLE_LABELS,
)
from server.errors import ApiError
from server.http.i18n import request_locale, translate_for
from server.keys import LOGIN_TOKEN_KEY, PRINCIPAL_KEY, SETTINGS_KEY, TRANSLATIONS_KEY
from server.pages.forms import notice_from

TEMPLATE_DIR = Path(__file__).resolve().parent.parent.parent / "web" / "templates"


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translate_for(context["request"])(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    request: web.Request = context["request"]
    translations = request.app.get(TRANSLATIONS_KEY)
    if translations is None:
        return singular if n == 1 else plural
    return translations[request_locale(request)].ngettext(singular, plural, n)


@jinja2.pass_context
def _localtime(
    context: jinja2.runtime.Context, value: datetime | None, pattern: str = "yyyy-MM-dd HH:mm"
) -> str:
    """A UTC datetime shown in the configured time zone."""
    if value is None:
        return "—"
    request: web.Request = context["request"]
    settings = request.app[SETTINGS_KEY]
    return str(format_datetime(value, pattern, tzinfo=settings.tz, locale=request_locale(request)))


@jinja2.pass_context
def _zone_name(context: jinja2.runtime.Context) -> str:
    """The configured time zone in words ("China (Shanghai) Time")."""
    request: web.Request = context["request"]
    zone = request.app[SETTINGS_KEY].tz
    return str(get_timezone_location(zone, locale=request_locale(request)))


def hours_text(value: Decimal | int | float) -> str:
    """Credit hours as people write them: 3, 1.5, 0.25 (never 3.00)."""
    text = f"{Decimal(str(value)):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def setup_templates(app: web.Application) -> None:
    """Attach the jinja2 environment to the app."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = _localtime
    env.filters["hours"] = hours_text
    env.globals["static"] = _static_url
    env.globals["url"] = _url
    env.globals["zone_name"] = _zone_name


def _page_context(request: web.Request) -> dict[str, Any]:
    principal = request.get(PRINCIPAL_KEY)
    login_token = request.get(LOGIN_TOKEN_KEY)
    return {
        "request": request,
        "principal": principal,
        "csrf_token": csrf_token_for(request, login_token) if login_token else "",
        "locale": request_locale(request),
        "role_labels": ROLE_LABELS,
        "level_labels": LEVEL_LABELS,
        "category_labels": CATEGORY_LABELS,
        "agent_state_labels": AGENT_STATE_LABELS,
        "session_state_labels": SESSION_STATE_LABELS,
        "venue_role_labels": VENUE_ROLE_LABELS,
        "status_labels": STATUS_LABELS,
        "reason_labels": REASON_LABELS,
        "flag_labels": FLAG_LABELS,
        "current_path": request.path_qs,
        "notice": notice_from(request, translate_for(request)),
    }


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """Render a page with the shared context."""
    full = {**_page_context(request), **context}
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def render_error_page(request: web.Request, error: ApiError) -> web.StreamResponse:
    """The HTML face of an ApiError."""
    gettext = translate_for(request)
    message = error.describe(gettext)
    return render(
        request,
        "error.html",
        {"status": error.status, "code": error.code, "message": message},
        status=error.status,
    )


@jinja2.pass_context
def _static_url(context: jinja2.runtime.Context, name: str) -> str:
    """A versioned URL of a file in web/static (so browsers refetch it after a change)."""
    request: web.Request = context["request"]
    return str(request.app.router["static"].url_for(filename=name))


@jinja2.pass_context
def _url(
    context: jinja2.runtime.Context,
    name: str,
    query: Mapping[str, object] | None = None,
    **parts: object,
) -> str:
    """The URL of a named route, with its parts filled in and an optional query (blanks dropped)."""
    request: web.Request = context["request"]
    url = request.app.router[name].url_for(**{key: str(value) for key, value in parts.items()})
    if query:
        kept = {key: str(value) for key, value in query.items() if value not in (None, "")}
        url = url.with_query(kept)
    return str(url)
