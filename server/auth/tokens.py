"""Random bearer tokens: shown once, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

USER_TOKEN_PREFIX = "hu_"  # noqa: S105  (a prefix, not a secret)
VENUE_TOKEN_PREFIX = "hv_"  # noqa: S105


def new_token(prefix: str) -> str:
    """A fresh token with 256 bits of randomness."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hint(token: str) -> str:
    """A short, harmless prefix to tell tokens apart in lists."""
    return token[:8]


def digests_match(stored: str, token: str) -> bool:
    """Constant-time comparison of a stored digest with a presented token."""
    return hmac.compare_digest(stored, digest(token))


def keyed(secret_key: str, purpose: str, value: str) -> str:
    """An HMAC of a value for one purpose (CSRF tokens are derived this way)."""
    mac = hmac.new(secret_key.encode("utf-8"), f"{purpose}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()


def equal(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
