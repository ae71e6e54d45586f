"""The agent's clock: local wall time with its offset, as PROTOCOL.md wants it."""

from __future__ import annotations

from datetime import datetime


def now() -> datetime:
    """The local time, aware of its UTC offset."""
    return datetime.now().astimezone()


def iso(value: datetime) -> str:
    """ISO 8601 with the offset, to the millisecond."""
    return value.isoformat(timespec="milliseconds")


def now_iso() -> str:
    """The local time now as ISO 8601."""
    return iso(now())
