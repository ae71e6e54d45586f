"""Who is calling: a signed-in user with a role and an organization scope, or a venue agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import InstrumentedAttribute

from server.domain.vocabulary import VENUE_SCOPED


@dataclass(frozen=True)
class Scope:
    """An organization subtree, given by its materialized path; None is the whole tree."""

    path: str | None

    def covers(self, org_path: str) -> bool:
        """True when the organization with this path lies inside the scope."""
        return self.path is None or org_path.startswith(self.path)

    def clause(self, path_column: InstrumentedAttribute[str]) -> ColumnElement[bool]:
        """A WHERE clause keeping only organizations inside the scope."""
        if self.path is None:
            return true()
        return path_column.startswith(self.path, autoescape=True)


WHOLE_TREE = Scope(None)


@dataclass(frozen=True)
class Principal:
    """A signed-in user as the request sees them."""

    user_id: int
    username: str
    display_name: str
    role: str
    org_code: str | None
    org_name: str | None
    scope: Scope
    via: str  # "cookie" or "token"
    # With a token: when it expires (a token it makes may not outlive it).
    token_expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this user."""
        return f"user:{self.username}"

    @property
    def venue_scope(self) -> Scope | None:
        """The subtree whose venues cut what this user sees of a session (a venue's staff see
        only their venues' roster lines and attendance); None when they see every venue's."""
        return self.scope if self.role in VENUE_SCOPED else None


@dataclass(frozen=True)
class AgentVenue:
    """A venue agent authenticated by its venue token."""

    venue_id: int
    code: str
    name: str
    org_id: int

    @property
    def actor(self) -> str:
        """How the audit trail names this agent."""
        return f"agent:{self.code}"
