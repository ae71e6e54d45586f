"""The words for codes (roles, levels, categories, agent states, CSV columns, session states,
attendance statuses, reasons and flags): English msgids, translated where they are shown."""

from __future__ import annotations

from types import MappingProxyType

ROLE_LABELS = MappingProxyType(
    {
        "admin": "Administrator",
        "operator": "Operator",
        "venue_staff": "Venue staff",
        "reviewer": "Reviewer",
    }
)
LEVEL_LABELS = MappingProxyType(
    {
        "city": "City",
        "county": "County",
        "committee": "Grassroots Party committee",
        "branch": "Party branch",
    }
)
CATEGORY_LABELS = MappingProxyType(
    {
        "ordinary": "Ordinary member",
        "secretary": "Party organization secretary",
        "committee": "Leadership team member",
    }
)
# The network path a venue's picture takes (passthrough.peer.ICE_PATHS).
ICE_PATH_LABELS = MappingProxyType(
    {
        "host/udp": "Direct (UDP)",
        "srflx/udp": "Through NAT (UDP)",
        "prflx/udp": "Through NAT (UDP)",
        "relay/udp": "Via the TURN relay (UDP)",
        "relay/tcp": "Via the TURN relay (TCP)",
        "relay/tls": "Via the TURN relay (TLS, port 443)",
    }
)
AGENT_STATE_LABELS = MappingProxyType(
    {"idle": "Idle", "receiving": "Receiving", "degraded": "Degraded"}
)
COLUMN_LABELS = MappingProxyType(
    {
        "member_no": "Member number",
        "name": "Member name",
        "org_code": "Organization code",
        "category": "Category",
        "card_code": "Card code",
    }
)
SESSION_STATE_LABELS = MappingProxyType(
    {
        "scheduled": "Scheduled",
        "live": "Live",
        "ended": "Ended",
        "finalized": "Finalized",
        "approved": "Approved",
    }
)
SESSION_ACTION_LABELS = MappingProxyType(
    {
        "start": "start",
        "end": "end",
        "finalize": "finalize",
        "approve": "approve",
        "reopen": "reopen",
    }
)
SESSION_BUTTON_LABELS = MappingProxyType(
    {
        "start": "Start the session",
        "end": "End the session",
        "finalize": "Finalize attendance",
        "approve": "Approve",
        "reopen": "Reopen",
    }
)
VENUE_ROLE_LABELS = MappingProxyType({"main": "Main venue", "branch": "Branch venue"})
STATUS_LABELS = MappingProxyType({"present": "Present", "partial": "Partial", "absent": "Absent"})
REASON_LABELS = MappingProxyType(
    {
        "outage": "Stream outage",
        "short_stay": "Stayed too short",
        "no_checkin": "No check-in",
    }
)
FLAG_LABELS = MappingProxyType(
    {
        "late": "Late",
        "left_early": "Left early",
        "wrong_venue": "Not at the assigned venue",
        "walk_in": "Walk-in",
        "outside_scope": "Walk-in from outside the session's organizations (not credited)",
        "conflict": "Overlapping venues",
        "repeat": "Repeat training",
        "unmatched_out": "Check-out without check-in",
    }
)
# Why a reviewer should look at a self check-in by phone (扫码签到).
REVIEW_LABELS = MappingProxyType(
    {
        "shared_phone": "One phone checked in several members",
        "stream_down": "The venue's stream was down at that moment",
        "refused_second_member": "Refused: this phone had already checked in another member",
    }
)
# The signed event callbacks' events and deliveries (webhooks page).
EVENT_LABELS = MappingProxyType(
    {
        "session.scheduled": "Session scheduled",
        "session.changed": "Session changed",
        "session.started": "Session started",
        "session.ended": "Session ended",
        "session.finalized": "Attendance finalized",
        "session.approved": "Session approved",
        "broadcast.started": "Broadcast started",
        "broadcast.ended": "Broadcast ended",
        "venue.down": "Venue stream down",
        "venue.recovered": "Venue stream recovered",
        "plan.filed": "Plan filed",
        "plan.accepted": "Plan accepted",
        "plan.returned": "Plan returned",
        "report.stored": "Monthly report stored",
    }
)
DELIVERY_STATE_LABELS = MappingProxyType(
    {"pending": "Pending", "delivered": "Delivered", "failed": "Given up"}
)
