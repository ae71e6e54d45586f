"""The ApiError hierarchy: services raise these; error_middleware renders them (PROTOCOL.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Term(str):
    """A message parameter that is itself a msgid (a level's name, say): translated too."""


class ApiError(Exception):
    """An error with a status, a stable code and a human message (an English msgid)."""

    status = 500
    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
        self.fields = dict(fields) if fields else None
        self.extra = dict(extra) if extra else None
        self.headers = dict(headers) if headers else {}

    def describe(self, gettext: Callable[[str], str]) -> str:
        """The message in the reader's language, its parameters filled in."""
        params = {
            name: gettext(value) if isinstance(value, Term) else value
            for name, value in self.params.items()
        }
        return gettext(self.message).format(**params)


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


class Conflict(ApiError):
    status, code = 409, "conflict"


class OfferFromServer(Conflict):
    """The media engine of this broadcast makes the offer (Janus): ask for it, then answer."""

    code = "offer_from_server"


class OfferFromAgent(Conflict):
    """The media engine of this broadcast answers the agent's offer (the built-in relay)."""

    code = "offer_from_agent"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class Invalid(ApiError):
    status, code = 422, "invalid"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **params: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **params)
        self.retry_after = retry_after


class Internal(ApiError):
    status, code = 500, "internal"


class Unavailable(ApiError):
    status, code = 503, "unavailable"
