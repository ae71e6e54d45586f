"""Venue rules: the fields of a new venue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain import validation as v

HEARTBEAT_S = 15
STATS_S = 5
MISSED_BEATS_OFFLINE = 3
OFFLINE_AFTER = timedelta(seconds=MISSED_BEATS_OFFLINE * HEARTBEAT_S)


@dataclass(frozen=True)
class VenueFields:
    """A new venue as given, already checked."""

    code: str
    name: str
    org_code: str


def parse_venue(raw: Mapping[str, object]) -> tuple[VenueFields | None, v.Problems]:
    """Check a new venue's fields."""
    problems = v.Problems()
    code = v.code(raw, "code", problems)
    name = v.text(raw, "name", problems)
    org_code = v.code(raw, "org_code", problems)
    if problems or code is None or name is None or org_code is None:
        return None, problems
    return VenueFields(code, name, org_code), problems


def is_online(last_seen: datetime | None, now: datetime) -> bool:
    """An agent is offline once it has missed three heartbeats."""
    return last_seen is not None and now - last_seen <= timedelta(
        seconds=MISSED_BEATS_OFFLINE * HEARTBEAT_S
    )
