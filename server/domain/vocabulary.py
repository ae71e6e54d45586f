"""The product's words, defined once: states, kinds, sources, roles and who may do what, years.

The tables (db/models.py) take their CHECK lists from here, the API validates against them, and
every handler's `allow(...)` names one of the role groups below.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

# The organization tree and its members.
ORG_LEVELS: Final = ("city", "county", "committee", "branch")
MEMBER_CATEGORIES: Final = ("ordinary", "secretary", "committee")

# A session (场次): scheduled → live → ended → finalized → approved.
SESSION_STATES: Final = ("scheduled", "live", "ended", "finalized", "approved")
EDITABLE_STATES: Final = ("scheduled",)  # a session's fields and roster change only before it runs
HELD_STATES: Final = ("finalized", "approved")  # a session whose results count: held
BROADCASTABLE_STATES: Final = ("scheduled", "live")  # broadcast before and while it runs
VENUE_ROLES: Final = ("main", "branch")

# What agents send: check-ins, stream-health samples and their own state.
CHECKIN_KINDS: Final = ("in", "out")
AGENT_CHECKIN_SOURCES: Final = ("scanner", "manual", "import", "qr")  # what an agent may send
CHECKIN_SOURCES: Final = (*AGENT_CHECKIN_SOURCES, "self")  # self: a member's phone (扫码签到)
STREAM_STATES: Final = ("good", "degraded", "down")
UP_STATES: Final = frozenset({"good", "degraded"})  # ATTENDANCE.md §2: these count as up
AGENT_STATES: Final = ("idle", "receiving", "degraded")
# How an agent's picture reaches it (passthrough.peer.ICE_PATHS, which agents report from).
ICE_PATHS: Final = ("host/udp", "srflx/udp", "prflx/udp", "relay/udp", "relay/tcp", "relay/tls")

ATTENDANCE_STATUSES: Final = ("present", "partial", "absent")
# A plan (培训计划): draft → filed → accepted | returned, and a returned plan is filed again.
PLAN_STATES: Final = ("draft", "filed", "accepted", "returned")
EDITABLE_PLAN_STATES: Final = ("draft", "returned")  # a plan's fields change only before review
FILED_PLAN_STATES: Final = ("filed", "accepted")  # 已备案: what counts towards the plans of a year

# Roles and the groups handlers allow.
ROLES: Final = ("admin", "operator", "venue_staff", "reviewer")
READERS: Final = ("admin", "operator", "reviewer")  # read sessions, members, reports, plans
VENUE_READERS: Final = (*READERS, "venue_staff")  # …and venues, which a venue's staff see too
# Roles that see of a session only their own venues' part: its roster lines, attendance, timeline.
VENUE_SCOPED: Final = ("venue_staff",)
WRITERS: Final = ("admin", "operator")  # sessions, their broadcasts, class steps, report versions
REVIEWERS: Final = ("admin", "reviewer")  # finalize, approve, review plans
ADMINS: Final = ("admin",)
# Who may move a session along its workflow, per action.
SESSION_ACTIONS: Final = MappingProxyType(
    {
        "start": WRITERS,
        "end": WRITERS,
        "finalize": REVIEWERS,
        "approve": REVIEWERS,
        "reopen": ADMINS,
    }
)

# Training records are kept by calendar year; every year the product reads or shows lies here.
FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2099


def editable(state: str) -> bool:
    """Whether a session in this state may still be edited (fields, venues, roster)."""
    return state in EDITABLE_STATES
