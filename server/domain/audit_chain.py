"""The audit trail's hash chain: pure functions, no I/O.

Each entry carries its chain version. Version 1 (LEGACY) is the chain as first written: a plain
SHA-256 over the entry, which anyone who can write the database can recompute after an edit.
Version 2 (KEYED) is an HMAC-SHA256 under a key derived from the server's secret key, which the
database never holds. Upgrading keeps the old entries as they are: they are checked the old
way, and the first keyed entry's hash covers the last legacy hash (its `prev_hash`), so from
then on no legacy entry can be rewritten without the key either. Once the chain is keyed, every
later entry must be keyed. The head (count and last hash) is also anchored outside the
database, so that deleting the newest entries shows too (services/audit_anchor.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
LEGACY, KEYED = 1, 2  # chain versions: unkeyed SHA-256, HMAC-SHA256 with the server's key
# Derivation label of the chain key; no other use of the secret key HMACs this text (those
# HMAC "purpose:value").
KEY_LABEL = b"hetang audit chain key"
ANCHOR_FILE = "audit_anchor.json"


@dataclass(frozen=True)
class AuditFacts:
    """What one audit entry says."""

    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None = None


def canonical(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same facts always give the same text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def as_text(value: dict[str, Any] | None) -> str | None:
    """The stored form of a before/after snapshot: canonical JSON, hashed exactly as stored."""
    return None if value is None else canonical(value)


def _chained(
    position: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: str | None,
    after: str | None,
    note: str | None,
) -> list[Any]:
    """What a hash covers, in its order: the position, the previous hash, the stored fields."""
    iso = at.isoformat()
    return [position, prev_hash, iso, actor, action, object_type, object_id, before, after, note]


def entry_hash(
    position: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: str | None,
    after: str | None,
    note: str | None,
) -> str:
    """SHA-256 over the previous hash, the entry's position and its stored fields (LEGACY)."""
    fields = _chained(
        position, prev_hash, at, actor, action, object_type, object_id, before, after, note
    )
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


def keyed_entry_hash(
    key: bytes,
    position: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: str | None,
    after: str | None,
    note: str | None,
) -> str:
    """HMAC-SHA256 under the chain key over the chain version, the previous hash, the entry's
    position and its stored fields (KEYED)."""
    fields = _chained(
        position, prev_hash, at, actor, action, object_type, object_id, before, after, note
    )
    payload = canonical([KEYED, *fields])
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def chain_key(secret_key: str) -> bytes:
    """The chain key: derived from the server's secret key under a label of its own."""
    return hmac.new(secret_key.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class AuditSeal:
    """What keys and anchors a process's audit writes: the chain key and the anchor file."""

    key: bytes = field(repr=False)
    anchor_path: Path

    @classmethod
    def of(cls, secret_key: str, data_dir: Path) -> AuditSeal:
        """The seal of a server with this secret key and data directory."""
        return cls(chain_key(secret_key), data_dir / ANCHOR_FILE)


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment: how many entries it had and the last one's hash."""

    count: int
    head: str

    def as_text(self) -> str:
        """The anchor file's content."""
        return canonical({"count": self.count, "head": self.head}) + "\n"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Read an anchor file's content; ValueError when it is not one."""
        try:
            found = json.loads(text)
        except ValueError:
            raise ValueError("it is not JSON") from None
        if not isinstance(found, dict):
            raise ValueError("it is not a JSON object")
        count, head = found.get("count"), found.get("head")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("its count is not a whole number")
        if not isinstance(head, str) or len(head) != len(GENESIS):
            raise ValueError("its head is not a hash")
        return cls(count, head)


def changed_fields(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
