"""What page forms need: their text values, their problems in words, a notice after redirect."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn

from aiohttp import web

from server.errors import ApiError
from server.http.i18n import translate_for

# Messages a page may show after a redirect: ?notice=<key>&<param>=<value>. Only these keys
# exist, so a crafted link can at most fill a known sentence with (escaped) words.
NOTICE_MESSAGES = MappingProxyType(
    {
        "organization_created": "Organization {code} was added.",
        "member_created": "Member {member_no} was added.",
        "members_imported": (
            "The import is done: {created} members added, {updated} changed, {unchanged} unchanged."
        ),
        "user_created": "User {username} was added.",
        "user_updated": "The changes to user {username} were saved.",
        "password_changed": (
            "The password of {username} was changed; their signed-in browsers were signed out "
            "and their API tokens revoked."
        ),
        "token_revoked": "The API token {hint}… of {username} was revoked; it no longer works.",
        "session_created": "The session was scheduled with {roster} members on its roster.",
        "session_updated": (
            "The changes to the session were saved ({roster} members on its roster)."
        ),
        "session_start": "The session has started.",
        "session_end": "The session has ended.",
        "session_finalize": "Attendance was computed; the results are below.",
        "session_approve": "The session was approved; its records are locked.",
        "session_reopen": "The session was reopened; it can be finalized again.",
    }
)
MAX_NOTICE_VALUE = 64


@dataclass(frozen=True)
class FormProblem:
    """Why a submitted form was not accepted, in the reader's language."""

    form: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    status: int = 422


async def read_form(request: web.Request) -> dict[str, str]:
    """The text fields of a submitted form (file fields are left out)."""
    form = await request.post()
    return {name: value for name, value in form.items() if isinstance(value, str)}


def problem_of(request: web.Request, form: str, error: ApiError) -> FormProblem:
    """An ApiError from a service, translated for the form that caused it."""
    gettext = translate_for(request)
    return FormProblem(
        form,
        error.describe(gettext),
        {name: gettext(problem) for name, problem in (error.fields or {}).items()},
        error.status,
    )


def redirect_with_notice(
    request: web.Request,
    route: str,
    notice: str,
    parts: Mapping[str, str] | None = None,
    **params: str | int,
) -> NoReturn:
    """POST-redirect-GET: go to a named page that then shows one of NOTICE_MESSAGES."""
    if notice not in NOTICE_MESSAGES:
        raise ValueError(f"unknown notice {notice!r}")
    url = request.app.router[route].url_for(**(parts or {}))
    query = {"notice": notice, **{name: str(value) for name, value in params.items()}}
    raise web.HTTPSeeOther(str(url.with_query(query)))


def notice_from(request: web.Request, gettext: Callable[[str], str]) -> str | None:
    """The notice named in the query string, filled in and translated, or None."""
    template = NOTICE_MESSAGES.get(request.query.get("notice", ""))
    if template is None:
        return None
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    values = {name: request.query.get(name, "")[:MAX_NOTICE_VALUE] for name in names}
    return gettext(template).format(**values)
