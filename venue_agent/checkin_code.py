"""The room screen's rotating self check-in code (扫码签到): a fresh random nonce every 15 s,
signed with a key derived from this venue's token, so the server verifies a scanned code
without asking us. The server keeps only the token's SHA-256 digest and derives the same key
from it (server/domain/checkin_codes.py, which this mirrors: the agent never imports the
server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

ROTATION_S = 15
KEY_LABEL = b"hetang-selfcheckin-v1"
NONCE_BYTES = 12  # 16 base64url characters


@dataclass(frozen=True)
class ShownCode:
    """The code for one rotation: the address a phone opens, and when it stops being shown."""

    url: str
    window: int
    expires_in_s: float


class CodeMaker:
    """Makes this venue's codes; one nonce per session and rotation."""

    def __init__(self, server_url: str, venue_token: str) -> None:
        self.server_url = server_url.rstrip("/")
        token_digest = hashlib.sha256(venue_token.encode("utf-8")).hexdigest()
        self._key = hmac.new(token_digest.encode("ascii"), KEY_LABEL, hashlib.sha256).digest()
        self._nonces: dict[tuple[str, int], str] = {}

    def code(
        self, venue_code: str, session_public_id: str, now_unix: float | None = None
    ) -> ShownCode:
        """The current rotation's code for a session of this venue."""
        now = time.time() if now_unix is None else now_unix
        window = int(now // ROTATION_S)
        key = (session_public_id, window)
        if key not in self._nonces:
            self._nonces = {k: v for k, v in self._nonces.items() if k[1] >= window - 1}
            self._nonces[key] = secrets.token_urlsafe(NONCE_BYTES)
        signed = f"{venue_code}/{session_public_id}/{window}/{self._nonces[key]}"
        mac = hmac.new(self._key, signed.encode("utf-8"), hashlib.sha256).digest()[:16]
        signature = base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")
        return ShownCode(
            f"{self.server_url}/c/{signed}.{signature}", window, (window + 1) * ROTATION_S - now
        )
