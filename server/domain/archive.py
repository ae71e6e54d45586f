"""Training archive rules (培训档案): a member's completeness of the yearly requirement, their
state in the committee cabinet (一党委一专柜), and the cabinet's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from server.domain.reports import coverage_pct

FULL = Decimal("100.0")
# A member's state in the cabinet: the yearly requirement met, some credit but not enough,
# no credit at all in the year.
CABINET_STATE_LABELS = MappingProxyType(
    {
        "complete": "Complete",
        "incomplete": "Incomplete",
        "untrained": "Untrained",
    }
)


def completeness_pct(earned: Decimal, required: Decimal) -> Decimal:
    """earned ÷ required × 100, half up to one decimal, never above 100.0 (a requirement of
    zero is met by anybody)."""
    if required <= 0:
        return FULL
    return min(coverage_pct(int(earned * 100), int(required * 100)), FULL)


def member_state(earned: Decimal, required: Decimal) -> str:
    """complete, incomplete or untrained (no credited hours in the year)."""
    if earned >= required:
        return "complete"
    return "incomplete" if earned > 0 else "untrained"


@dataclass(frozen=True)
class ArchiveLine:
    """One member's line in the cabinet."""

    member_no: str
    name: str
    org_code: str
    org_name: str
    category: str
    required_hours: Decimal
    earned_hours: Decimal

    @property
    def completeness_pct(self) -> Decimal:
        """Hours earned against the requirement, capped at 100.0."""
        return completeness_pct(self.earned_hours, self.required_hours)

    @property
    def state(self) -> str:
        """complete, incomplete or untrained."""
        return member_state(self.earned_hours, self.required_hours)


@dataclass(frozen=True)
class CabinetSummary:
    """How many members, in which state, and the overall completeness: the hours earned
    (each member's counted up to their requirement) against the hours required, in %."""

    members_total: int
    complete: int
    incomplete: int
    untrained: int
    overall_pct: Decimal


def cabinet_summary(lines: Iterable[ArchiveLine]) -> CabinetSummary:
    """Count the lines by state and weigh the hours."""
    counts = dict.fromkeys(CABINET_STATE_LABELS, 0)
    earned, required = Decimal(0), Decimal(0)
    for line in lines:
        counts[line.state] += 1
        earned += min(line.earned_hours, line.required_hours)
        required += line.required_hours
    total = sum(counts.values())
    overall = completeness_pct(earned, required) if total else Decimal("0.0")
    return CabinetSummary(
        total, counts["complete"], counts["incomplete"], counts["untrained"], overall
    )
