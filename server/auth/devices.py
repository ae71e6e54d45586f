"""The known-browser cookie: a browser that has signed in to an account before skips its
address's sign-in back-off for that account (see LoginThrottle in server/auth/throttle.py)."""

from __future__ import annotations

import secrets

from server.auth import tokens

DEVICE_COOKIE = "hetang_device"
DEVICE_LIFETIME_S = 180 * 86400
_PURPOSE = "known-browser"


def _mac(secret_key: str, username: str, nonce: str) -> str:
    # The nonce (URL-safe base64, never a colon) comes first: no two pairs make the same text.
    return tokens.keyed(secret_key, _PURPOSE, f"{nonce}:{username.strip().lower()}")


def mint(secret_key: str, username: str) -> str:
    """A fresh cookie value naming this account, signed with the server's secret key."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(secret_key, username, nonce)}"


def is_known(secret_key: str, username: str, value: str | None) -> bool:
    """True when the cookie was made by this server for this account."""
    nonce, _, mac = (value or "").partition(".")
    if not nonce or not mac:
        return False
    return tokens.equal(mac, _mac(secret_key, username, nonce))
