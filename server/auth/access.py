"""Each handler declares who may call it; the auth middleware enforces the declaration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from server.domain.vocabulary import ROLES

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
ACCESS_ATTR = "__hetang_access__"


@dataclass(frozen=True)
class Access:
    """Who may call a handler: anybody, a venue agent, or signed-in users of some roles."""

    kind: Literal["public", "user", "agent"]
    roles: frozenset[str] = frozenset()


def _mark(access: Access) -> Callable[[H], H]:
    def decorate(handler: H) -> H:
        setattr(handler, ACCESS_ATTR, access)
        return handler

    return decorate


def allow(*roles: str) -> Callable[[H], H]:
    """Signed-in users with one of these roles may call the handler."""
    unknown = set(roles).difference(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    return _mark(Access("user", frozenset(roles)))


def public(handler: H) -> H:
    """Anybody may call the handler (login page, health check, static files)."""
    return _mark(Access("public"))(handler)


def agent(handler: H) -> H:
    """Only a venue agent with a valid venue token may call the handler."""
    return _mark(Access("agent"))(handler)


def access_of(handler: object) -> Access | None:
    """The declared access of a handler, or None when it declared nothing."""
    access = getattr(handler, ACCESS_ATTR, None)
    return access if isinstance(access, Access) else None
