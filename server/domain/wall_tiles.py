"""How the venue wall judges each venue: one condition per tile, the problems among them, and
the order the wall shows them in (the main venue first, then the worst branch venues first)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

# A branch venue, worst first. Time off the air (before 开始直播 or after 结束直播) is nobody's
# fault: an agent then reports nothing to receive, which is planned, not an outage.
BRANCH_CONDITIONS: Final = ("offline", "down", "no_report", "degraded", "good", "off_air")
# The main venue sends the broadcast from the operator's page; its own agent is optional.
MAIN_CONDITIONS: Final = ("source_lost", "on_air", "not_on_air")
PROBLEMS: Final = frozenset({"offline", "down", "no_report", "degraded", "source_lost"})
CONDITION_LABELS: Final = MappingProxyType(
    {
        "offline": "Agent offline",
        "down": "Interrupted",
        "no_report": "No report",
        "degraded": "Stuttering",
        "good": "Good",
        "off_air": "Not on air",
        "source_lost": "Source lost",
        "on_air": "On air",
        "not_on_air": "Not on air",
    }
)

# The badge colour of each condition (app.css: stream-good, stream-degraded, stream-down, …).
CONDITION_BADGES: Final = MappingProxyType(
    {
        "offline": "stream-down",
        "down": "stream-down",
        "no_report": "stream-degraded",
        "degraded": "stream-degraded",
        "good": "stream-good",
        "off_air": "stream-none",
        "source_lost": "stream-down",
        "on_air": "stream-good",
        "not_on_air": "stream-none",
    }
)


def branch_condition(online: bool, stream_state: str | None, on_air: bool) -> str:
    """A branch venue's condition from its agent being online, its newest fresh sample's state
    (None: none, or too old) and whether the broadcast is on."""
    if not online:
        return "offline"
    if not on_air:
        return "off_air"
    if stream_state is None:
        return "no_report"
    return stream_state


def main_condition(on_air: bool, publishing: bool) -> str:
    """The main venue's condition: whether a page is sending what the broadcast relays."""
    if not on_air:
        return "not_on_air"
    return "on_air" if publishing else "source_lost"


def wall_rank(role: str, condition: str, code: str) -> tuple[int, int, str]:
    """The wall's order: the main venue, then branch venues worst first, then by code."""
    if role == "main":
        return (0, MAIN_CONDITIONS.index(condition), code)
    return (1, BRANCH_CONDITIONS.index(condition), code)
