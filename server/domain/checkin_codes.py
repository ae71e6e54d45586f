"""The room screen's rotating self check-in codes (扫码签到): signed by the venue's agent,
verified here without asking it.

A code names a venue, a session, a 15-second window and a random nonce (16 characters, fresh
every rotation) and carries an HMAC-SHA256 signature under a key derived from the venue token.
The server keeps only the token's SHA-256 digest, so the key is derived from that digest: the
agent hashes its raw token the same way and derives the same key. A code is good for its own
window and, for MARGIN_S seconds after the next rotation, the previous one too.

Pure: no I/O and no clock; callers pass the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

ROTATION_S = 15
MARGIN_S = 2
NONCE_LENGTH = 16  # base64url characters: 96 random bits per rotation
KEY_LABEL = b"hetang-selfcheckin-v1"
PASS_LIFETIME_S = 300  # a scanned code lets its phone finish the form within this
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16}")  # NONCE_LENGTH
SIGNATURE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")
MAX_CODE_FIELD = 64


def code_key(token_digest: str) -> bytes:
    """The signing key of a venue, from the hex SHA-256 digest of its token."""
    return hmac.new(token_digest.encode("ascii"), KEY_LABEL, hashlib.sha256).digest()


def window_of(unix_s: float) -> int:
    """The rotation a moment falls in."""
    return int(unix_s // ROTATION_S)


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class CheckinCode:
    """What a QR code says: venue, session, window, nonce and the agent's signature."""

    venue_code: str
    session_id: str
    window: int
    nonce: str
    signature: str

    def signed_part(self) -> str:
        """The text the signature covers."""
        return f"{self.venue_code}/{self.session_id}/{self.window}/{self.nonce}"

    def path(self) -> str:
        """The code as the phone page's address: /c/{venue}/{session}/{window}/{nonce}.{sig}"""
        return f"/c/{self.signed_part()}.{self.signature}"


def sign(key: bytes, venue_code: str, session_id: str, window: int, nonce: str) -> CheckinCode:
    """A signed code (the agent makes these; tests too)."""
    unsigned = CheckinCode(venue_code, session_id, window, nonce, "")
    return CheckinCode(venue_code, session_id, window, nonce, _mac(key, unsigned.signed_part()))


def parse(venue_code: str, session_id: str, window: str, token: str) -> CheckinCode | None:
    """The code in an address's parts ({nonce}.{signature} last), or None when malformed."""
    nonce, _, signature = token.partition(".")
    if not (0 < len(venue_code) <= MAX_CODE_FIELD and 0 < len(session_id) <= MAX_CODE_FIELD):
        return None
    if not window.isdigit() or len(window) > 12:
        return None
    if not NONCE_PATTERN.fullmatch(nonce) or not SIGNATURE_PATTERN.fullmatch(signature):
        return None
    return CheckinCode(venue_code, session_id, int(window), nonce, signature)


# Why a code is refused; the phone page says each in Chinese.
EXPIRED, FORGED = "expired", "forged"


def check(key: bytes, code: CheckinCode, now_unix: float) -> str | None:
    """None when the code is genuine and current, else EXPIRED or FORGED. The signature is
    compared in constant time and checked first: an old forged code is forged, not expired."""
    if not hmac.compare_digest(_mac(key, code.signed_part()), code.signature):
        return FORGED
    current = window_of(now_unix)
    if code.window == current:
        return None
    if code.window == current - 1 and now_unix - current * ROTATION_S < MARGIN_S:
        return None
    return EXPIRED


@dataclass(frozen=True)
class ScanPass:
    """What a phone that scanned a current code may do for a few minutes: check one member in
    or out at that venue and session. Signed with the server's secret and bound to the phone."""

    venue_code: str
    session_id: str
    issued_at: int  # unix seconds

    def _message(self, phone_digest: str) -> str:
        return f"pass/{self.venue_code}/{self.session_id}/{self.issued_at}/{phone_digest}"

    def seal(self, secret: bytes, phone_digest: str) -> str:
        """The pass as the page carries it."""
        mac = _mac(secret, self._message(phone_digest))
        return f"{self.venue_code}/{self.session_id}/{self.issued_at}/{mac}"

    @classmethod
    def open(
        cls, secret: bytes, sealed: str, phone_digest: str, now_unix: float
    ) -> ScanPass | None:
        """The pass when it is genuine, this phone's and not too old; else None."""
        parts = sealed.split("/")
        if len(parts) != 4 or not parts[2].isdigit() or len(parts[2]) > 12:
            return None
        found = cls(parts[0], parts[1], int(parts[2]))
        if not hmac.compare_digest(_mac(secret, found._message(phone_digest)), parts[3]):
            return None
        if not found.issued_at - MARGIN_S <= now_unix <= found.issued_at + PASS_LIFETIME_S:
            return None
        return found
