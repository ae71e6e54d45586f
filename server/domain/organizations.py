"""Organization tree rules: levels and which may hang below which."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.domain import validation as v
from server.domain.vocabulary import ORG_LEVELS


def may_parent(parent_level: str, child_level: str) -> bool:
    """A child sits strictly below its parent (a committee may sit directly under a city)."""
    return ORG_LEVELS.index(child_level) > ORG_LEVELS.index(parent_level)


def child_path(parent_path: str | None, org_id: int) -> str:
    """The materialized path of a new organization: its ancestors' ids, then its own."""
    return f"{parent_path or '/'}{org_id}/"


def roll_up(counts: dict[int, int], parents: dict[int, int | None]) -> dict[int, int]:
    """Subtree totals: every node's own count plus all of its descendants'."""
    totals = dict.fromkeys(parents, 0)
    for node, count in counts.items():
        current: int | None = node
        while current is not None and current in totals:
            totals[current] += count
            current = parents[current]
    return totals


@dataclass(frozen=True)
class OrgFields:
    """A new organization as given, already checked."""

    code: str
    name: str
    level: str
    parent_code: str | None


def parse_org(raw: Mapping[str, object]) -> tuple[OrgFields | None, v.Problems]:
    """Check a new organization's fields."""
    problems = v.Problems()
    code = v.code(raw, "code", problems)
    name = v.text(raw, "name", problems)
    level = v.choice(raw, "level", ORG_LEVELS, problems)
    parent_code = v.code(raw, "parent_code", problems, optional=True)
    if problems or code is None or name is None or level is None:
        return None, problems
    return OrgFields(code, name, level, parent_code), problems
