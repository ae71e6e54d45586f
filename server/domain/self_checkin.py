"""Self check-in's rules (扫码签到): the member's second factor, the venue's networks, and the
flags a reviewer sees. Pure: no I/O, no clock.

The second factor a city gets by default is the last four digits of the member's ID number
(身份证号后四位), held per member as a salted scrypt hash and never in clear. Why it and not a
one-time SMS code: it works with no SMS gateway, contract or per-message cost, on any phone and
in a township where texts arrive late; the member number alone is printed on rosters and cards,
the four digits are not. Four digits are guessable, so they are never the only barrier: a guess
needs a code scanned in the room in the last few seconds, and failed tries lock the member
number, the phone and the venue (server/services/self_checkin.py). A city that wants SMS codes
plugs a `SecondFactor` in; the default SMS hook says it is not configured.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from typing import Protocol

LAST4_PATTERN = re.compile(r"[0-9]{3}[0-9Xx]")  # an ID number ends in a digit or X
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**13, 8, 1
HASH_SCHEME = "scrypt1"

# Reviewer flags of a self check-in (CheckIn.review_flags).
SHARED_PHONE = "shared_phone"  # one phone checked in several members of the session
STREAM_DOWN = "stream_down"  # the venue's stream was down when the phone checked in


def normal_last4(value: str) -> str | None:
    """The four characters as stored (an x upper-cased), or None when they are not four."""
    value = value.strip()
    return value.upper() if LAST4_PATTERN.fullmatch(value) else None


def _scrypt(last4: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        last4.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


def hash_last4(last4: str, salt: bytes | None = None) -> str:
    """The stored form of four checked characters: scheme, salt and scrypt hash."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return f"{HASH_SCHEME}${salt.hex()}${_scrypt(last4, salt).hex()}"


def last4_matches(stored: str | None, given: str) -> bool:
    """Whether the four characters given are the member's (constant time; False when the
    member has none stored or the stored form is unknown)."""
    last4 = normal_last4(given)
    if stored is None or last4 is None:
        return False
    scheme, _, rest = stored.partition("$")
    salt_hex, _, hash_hex = rest.partition("$")
    if scheme != HASH_SCHEME:
        return False
    try:
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(last4, salt), expected)


class SecondFactor(Protocol):
    """How a city checks that the phone's holder is the member named: the answer is True
    only when `proof` is right for the member (their ID digits' hash, or a code sent)."""

    def verify(self, member_no: str, stored_last4_hash: str | None, proof: str) -> bool:
        """Whether the proof given for this member is right."""


class IdLast4:
    """The default second factor: the ID number's last four digits against their hash."""

    def verify(self, member_no: str, stored_last4_hash: str | None, proof: str) -> bool:
        """Compare the four digits with the stored salted hash."""
        return last4_matches(stored_last4_hash, proof)


class SmsCodeNotConfigured:
    """The SMS hook's default: no gateway is configured, so no code is ever right. A city with
    an SMS gateway implements `SecondFactor` (send a code, then verify it) in its place."""

    def verify(self, member_no: str, stored_last4_hash: str | None, proof: str) -> bool:
        """Refuse: there is no gateway to have sent a code."""
        return False


def parse_networks(text: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A venue's comma-separated CIDR list; raises ValueError naming a bad entry."""
    networks = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"not a network: {part.strip()!r}") from None
    return tuple(networks)


def network_allows(text: str | None, address: str) -> bool:
    """Whether a phone at this address may check in at a venue with these networks (no list:
    any address; a list with a bad entry refuses rather than let everyone in)."""
    try:
        networks = parse_networks(text)
        if not networks:
            return True
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def review_flags(*, shared_phone: bool, stream_down: bool) -> str | None:
    """A self check-in's flags as stored: sorted words, or None."""
    words = [flag for flag, on in ((SHARED_PHONE, shared_phone), (STREAM_DOWN, stream_down)) if on]
    return ",".join(sorted(words)) or None


def with_flag(stored: str | None, flag: str) -> str:
    """Stored flags with one more (kept sorted, never twice)."""
    words = set(filter(None, (stored or "").split(",")))
    return ",".join(sorted(words | {flag}))
