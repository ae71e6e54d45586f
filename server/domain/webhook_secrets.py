"""Endpoint signing secrets (`whsec_…`): made at random, kept in the database only sealed with a
key derived from the server's secret key (AES-GCM), so a copy of the database signs nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.domain.webhooks import SECRET_PREFIX

SECRET_BYTES = 32
SEALED_PREFIX = "v1."
_KEY_LABEL = b"hetang webhook secrets v1"


class SecretUnreadable(ValueError):
    """A sealed secret that this key cannot open (another server key, or tampered)."""


def new_secret() -> str:
    """A fresh `whsec_<base64 of 32 random bytes>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def hint(secret: str) -> str:
    """What lists show of a secret: its first characters after the prefix."""
    return secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + 6]


class SecretBox:
    """Seals and opens endpoint secrets with a key derived from the server's secret key."""

    def __init__(self, server_key: str) -> None:
        key = hmac.new(server_key.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, secret: str) -> str:
        """The secret as stored."""
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), _KEY_LABEL)
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str) -> str:
        """The secret a stored value holds."""
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretUnreadable("not a sealed secret")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], _KEY_LABEL).decode()
        except (ValueError, InvalidTag):
            raise SecretUnreadable("the secret cannot be opened with this key") from None
