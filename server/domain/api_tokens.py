"""Personal API token rules: a label, a lifetime of 1–365 days (90 unless asked), and the state a
token is in at a given moment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from server.domain import validation as v

DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365
MAX_LABEL_LENGTH = 100
BAD_DAYS = "must be a whole number of days from 1 to 365"
TOKEN_STATES = ("active", "expired", "revoked")
TOKEN_STATE_LABELS = MappingProxyType(
    {"active": "Valid", "expired": "Expired", "revoked": "Revoked"}
)


@dataclass(frozen=True)
class TokenRequest:
    """A new token as asked for, already checked."""

    label: str
    expires_days: int


def parse_token_request(raw: Mapping[str, object]) -> tuple[TokenRequest | None, v.Problems]:
    """Check a new token's `label` (optional text) and `expires_days` (an integer; the default
    when absent)."""
    problems = v.Problems()
    label = v.text(raw, "label", problems, max_len=MAX_LABEL_LENGTH, optional=True) or ""
    days = raw.get("expires_days", DEFAULT_TOKEN_DAYS)
    if days is None:
        days = DEFAULT_TOKEN_DAYS
    # bool is an int to Python, never to a person.
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
        problems["expires_days"] = BAD_DAYS
        return None, problems
    if problems:
        return None, problems
    return TokenRequest(label, days), problems


def token_id_of(ref: str) -> int | None:
    """The token id a path or command names, or None when it names none."""
    ref = ref.strip()
    if not ref.isascii() or not ref.isdigit() or len(ref) > 18:
        return None
    return int(ref)


def expiry(now: datetime, days: int, not_after: datetime | None = None) -> datetime:
    """When a token made now for `days` expires; never after `not_after` (the expiry of the
    token it was made with, so a token cannot outlive its maker)."""
    ends = now + timedelta(days=days)
    return ends if not_after is None else min(ends, not_after)


def token_state(expires_at: datetime, revoked_at: datetime | None, now: datetime) -> str:
    """One of TOKEN_STATES."""
    if revoked_at is not None:
        return "revoked"
    return "expired" if expires_at <= now else "active"
