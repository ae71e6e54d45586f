"""The one error middleware: every failure becomes the documented error shape (PROTOCOL.md)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from server.errors import (
    ApiError,
    Internal,
    Invalid,
    MethodNotAllowed,
    NotFound,
    TooLarge,
    Unavailable,
)
from server.http.body_limit import MAX_BODY
from server.http.i18n import translate_for
from server.keys import ERROR_PAGE_KEY, REQUEST_ID_KEY

__all__ = ("MAX_BODY", "error_body", "error_middleware", "wants_html")
log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_S = 5


def error_body(request: web.Request, error: ApiError) -> dict[str, Any]:
    """The documented shape: {"error": {"code", "message", ["fields"], …}}, translated."""
    gettext = translate_for(request)
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.describe(gettext),
    }
    if error.fields:
        body["fields"] = {name: gettext(problem) for name, problem in error.fields.items()}
    if error.extra:
        body.update(error.extra)
    return {"error": body}


def wants_html(request: web.Request) -> bool:
    """Pages answer errors as HTML; everything under /api/ (and /metrics) as JSON."""
    return not request.path.startswith(("/api/", "/metrics"))


def _from_http_exception(exc: web.HTTPException, body_limit: int) -> ApiError:
    if exc.status == 404:
        return NotFound("No such address.")
    if exc.status == 405:
        return MethodNotAllowed("This method is not allowed here.")
    if exc.status == 413:
        return TooLarge("The request body is larger than {limit} bytes.", limit=body_limit)
    if exc.status == 400:
        return Invalid("The request could not be read.")
    return ApiError(exc.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id; render every failure in the one error shape."""
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except ApiError as error:
        response = await _render(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and other successes pass through
            exc.headers["X-Request-Id"] = request_id
            raise
        mapped = _from_http_exception(exc, request.client_max_size)
        if isinstance(exc, web.HTTPMethodNotAllowed):
            mapped.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        response = await _render(request, mapped)
    except SQLAlchemyTimeout:
        # Every database connection of this process stayed busy for the pool's whole wait:
        # overload, not a fault. Agents and pages try again after Retry-After.
        log.warning(
            "no database connection within the wait for %s %s", request.method, request.path
        )
        response = await _render(
            request,
            Unavailable(
                "The server is busy; try again in a few seconds.",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            ),
        )
    except Exception:
        log.exception(
            "unexpected error in %s %s (request %s)", request.method, request.path, request_id
        )
        response = await _render(
            request,
            Internal(
                "Something went wrong on the server (request {request_id}).", request_id=request_id
            ),
        )
    response.headers["X-Request-Id"] = request_id
    return response


async def _render(request: web.Request, error: ApiError) -> web.StreamResponse:
    render_page = request.app.get(ERROR_PAGE_KEY)
    if render_page is not None and wants_html(request):
        response: web.StreamResponse = await render_page(request, error)
    else:
        response = web.json_response(
            error_body(request, error),
            status=error.status,
            dumps=lambda value: json.dumps(value, ensure_ascii=False),
        )
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
