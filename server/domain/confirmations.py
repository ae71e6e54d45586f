"""Which session actions ask first, and what the person is told will follow: ending a session
before its scheduled end, approving (records lock) and reopening (records unlock). Starting and
finalizing do not ask: they can be followed by the next step or done again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

# What follows each action, in the words the confirmation shows (translated; %(end)s is the
# scheduled end as a clock time, %(minutes)s how many minutes early).
CONSEQUENCES: Final = MappingProxyType(
    {
        "end": (
            "The session is scheduled to end at %(end)s: ending it now ends it %(minutes)s "
            "minutes early. It cannot be started again; broadcast and presence after now do not "
            "count. Branch venues can still upload check-ins for 30 minutes."
        ),
        "approve": (
            "Approving locks this session's attendance and the hours credited to training "
            "records: it can no longer be finalized again. Only an administrator can reopen it."
        ),
        "reopen": (
            "Reopening unlocks the records: the attendance can be finalized again and credited "
            "hours may change. The reopening is recorded in the audit log."
        ),
    }
)
CONFIRM_LABELS: Final = MappingProxyType(
    {
        "end": "End the session early",
        "approve": "Approve and lock the records",
        "reopen": "Reopen and unlock the records",
    }
)


@dataclass(frozen=True)
class Confirmation:
    """An action that asks first, and the figures its consequence names."""

    action: str
    ends_at: datetime
    minutes_early: int


def confirmation(action: str, ends_at: datetime, now: datetime) -> Confirmation | None:
    """What to ask before this action at this moment, or None when it goes ahead at once (every
    action but these three, and ending at or after the scheduled end)."""
    if action not in CONSEQUENCES:
        return None
    early = int((ends_at - now).total_seconds() // 60)
    if action == "end" and now >= ends_at:
        return None
    return Confirmation(action, ends_at, max(early, 0))
