"""Reading request bodies and query values, with the documented errors for bad input."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web

from server.domain import validation as v
from server.domain.times import year_of
from server.domain.vocabulary import FIRST_YEAR, LAST_YEAR
from server.errors import Invalid
from server.keys import SETTINGS_KEY
from server.services.clock import utcnow

T = TypeVar("T")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or 422 saying what is wrong with it."""
    value = await read_json_any(request)
    if not isinstance(value, dict):
        raise Invalid("The body must be a JSON object.")
    return value


async def read_json_any(request: web.Request) -> Any:
    """The body as any JSON value (an object, a list…), or 422 saying what is wrong with it."""
    if request.content_type != "application/json":
        raise Invalid("Send the body as JSON (Content-Type: application/json).")
    raw = await request.read()
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: nesting deep enough to exhaust the parser is not JSON we accept.
        raise Invalid("The body is not valid JSON.") from None
    if not _is_text(value):
        raise Invalid("The body's strings must be Unicode text (no lone UTF-16 surrogates).")
    return value


def _is_text(value: Any) -> bool:
    """True when every string, key or value, is Unicode text. JSON's \\u escapes can spell half
    of a UTF-16 surrogate pair, which Python keeps as a lone surrogate that no UTF-8 encoder (the
    database driver's included) accepts."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def checked(parsed: tuple[T | None, v.Problems]) -> T:
    """The parsed fields, or 422 listing every field problem."""
    fields, problems = parsed
    if fields is None or problems:
        raise Invalid("Some fields are missing or wrong.", fields=problems)
    return fields


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    """A whole-number query parameter within bounds."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(
            "The query parameter {name} must be a whole number.",
            name=name,
            fields={name: "must be a whole number"},
        ) from None
    if not low <= value <= high:
        raise Invalid(
            "The query parameter {name} must be between {low} and {high}.",
            name=name,
            low=low,
            high=high,
            fields={name: "is out of range"},
        )
    return value


def this_year(request: web.Request) -> int:
    """The current year in the server's time zone."""
    return year_of(utcnow(), request.app[SETTINGS_KEY].tz)


def query_year(request: web.Request) -> int:
    """The query's `year` (FIRST_YEAR..LAST_YEAR; 422 otherwise), this year when none is."""
    return query_int(request, "year", this_year(request), low=FIRST_YEAR, high=LAST_YEAR)


def iso(value: Any) -> str | None:
    """A UTC datetime as ISO 8601 with a Z."""
    if value is None:
        return None
    text: str = value.isoformat().replace("+00:00", "Z")
    return text


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def reply(data: Any, *, status: int = 200) -> web.Response:
    """A JSON answer in UTF-8 (Chinese stays readable)."""
    return web.json_response(data, status=status, dumps=_dumps)
