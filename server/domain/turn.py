"""TURN credentials in coturn's shared-secret REST scheme (`use-auth-secret`): the username is
`<expiry unix time>:<name>`, the password base64(HMAC-SHA1(secret, username)); coturn accepts
them until the expiry without knowing any user."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_TTL_S = 6 * 3600  # a lesson, with its rehearsal, on one set of credentials
MIN_TTL_S = 60
MAX_TTL_S = 7 * 24 * 3600
TURN_SCHEMES = ("turn:", "turns:")


@dataclass(frozen=True)
class TurnSettings:
    """Our coturn: its shared secret (empty: no minted credentials), its URLs, and how long the
    credentials it is given stay good."""

    secret: str = ""
    urls: tuple[str, ...] = ()
    ttl_s: int = DEFAULT_TTL_S

    @property
    def enabled(self) -> bool:
        """True when credentials are minted (a secret and at least one URL)."""
        return bool(self.secret) and bool(self.urls)


@dataclass(frozen=True)
class TurnCredential:
    """One minted credential: what RTCIceServer takes, and until when it works."""

    urls: tuple[str, ...]
    username: str
    credential: str
    expires_at: datetime

    def as_ice_server(self) -> dict[str, object]:
        """The shape RTCPeerConnection's iceServers (and aiortc's RTCIceServer) take."""
        return {"urls": list(self.urls), "username": self.username, "credential": self.credential}


def turn_password(secret: str, username: str) -> str:
    """coturn's password for a REST username: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint(turn: TurnSettings, name: str, now: datetime) -> TurnCredential:
    """Credentials for `name` (a venue's code, a user's name) good for turn.ttl_s from now."""
    if not turn.enabled:
        raise ValueError("TURN credentials need a secret and at least one URL")
    if not name or ":" in name:
        raise ValueError(f"a TURN name must be non-empty and without ':', not {name!r}")
    expiry = int(now.timestamp()) + turn.ttl_s
    username = f"{expiry}:{name}"
    return TurnCredential(
        turn.urls,
        username,
        turn_password(turn.secret, username),
        datetime.fromtimestamp(expiry, UTC),
    )


def parse_turn_urls(raw: str) -> tuple[str, ...]:
    """Comma-separated turn:/turns: URLs ('' means none); ValueError names a bad one."""
    urls = tuple(part.strip() for part in raw.split(",") if part.strip())
    for url in urls:
        if not url.startswith(TURN_SCHEMES) or len(url) <= len("turns:"):
            raise ValueError(f"{url!r} is not a turn: or turns: URL")
    return urls


def parse_ttl(raw: str) -> int:
    """Seconds, between a minute and a week."""
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"must be a whole number of seconds, not {raw!r}") from None
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise ValueError(f"must be between {MIN_TTL_S} and {MAX_TTL_S} seconds, not {seconds}")
    return seconds
