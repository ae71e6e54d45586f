"""The audit trail's hash chain: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


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
    """SHA-256 over the previous hash, the entry's position and its stored fields."""
    payload = canonical(
        [
            position,
            prev_hash,
            at.isoformat(),
            actor,
            action,
            object_type,
            object_id,
            before,
            after,
            note,
        ]
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def changed_fields(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    keys = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
