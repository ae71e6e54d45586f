"""The words for codes (roles, levels, categories, agent states, CSV columns): English msgids,
translated where they are shown."""

from __future__ import annotations

ROLE_LABELS = {
    "admin": "Administrator",
    "operator": "Operator",
    "venue_staff": "Venue staff",
    "reviewer": "Reviewer",
}
LEVEL_LABELS = {
    "city": "City",
    "county": "County",
    "committee": "Grassroots Party committee",
    "branch": "Party branch",
}
CATEGORY_LABELS = {
    "ordinary": "Ordinary member",
    "secretary": "Party organization secretary",
    "committee": "Leadership team member",
}
AGENT_STATE_LABELS = {"idle": "Idle", "receiving": "Receiving", "degraded": "Degraded"}
COLUMN_LABELS = {
    "member_no": "Member number",
    "name": "Member name",
    "org_code": "Organization code",
    "category": "Category",
    "card_code": "Card code",
}
