"""Bad input to the session API answers what PROTOCOL.md documents and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain import validation as v
from server.domain.sessions import NOT_A_CLASS_REF
from server.services.plan_links import UNKNOWN_CLASS
from tests.support.api_site import (
    ACTIONS,
    ALLOWED,
    EN,
    STATES,
    Site,
    counts,
    make_site,
    session_body,
)
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.world import World


@pytest.fixture
async def site(client: Client, db: Db, world: World) -> Site:
    """The place these tests work in."""
    return await make_site(client, db, world)


# --- Sessions API --------------------------------------------------------------------------

TIME_PROBLEM = "must be an ISO 8601 time with an offset"
HOURS_RANGE = "must be more than 0 and at most 100"
NOT_A_VENUE = "is not a known venue"
NOT_OF_SESSION = "is not a venue of this session"
NOT_CODES = "must be a list of venue codes"
REPEATS = "repeats a venue"
UNKNOWN = "names unknown members"
NEGATIVE = "must not be negative"
WHOLE = "must be a whole number"
INTERVAL = "must be between 1 and 3600"


def _roster_at(venue: str) -> list[dict[str, str]]:
    return [{"member_no": "P1", "venue": venue}]


AT_MAIN = _roster_at("MAIN")
TWICE = [{"member_no": "P1", "venue": "MAIN"}, {"member_no": "P1", "venue": "BRANCH"}]
RATIO = "must be more than 0 and at most 1"
# (what is wrong, the changes to a good session, the field named, its problem); a case whose
# main venue is not MAIN moves the roster there, so that only one thing is wrong.
BAD_SESSIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("start not a time", {"starts_at": "tomorrow"}, "starts_at", TIME_PROBLEM),
    ("start without offset", {"starts_at": "2026-11-20T09:00:00"}, "starts_at", TIME_PROBLEM),
    ("start a number", {"starts_at": 1763600400}, "starts_at", TIME_PROBLEM),
    ("start beyond UTC", {"starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at", TIME_PROBLEM),
    ("no end", {"ends_at": None}, "ends_at", TIME_PROBLEM),
    ("end at start", {"ends_at": "2026-11-20T01:00:00Z"}, "ends_at", "must be after the start"),
    ("end before start", {"ends_at": "2026-11-20T00:59:59Z"}, "ends_at", "must be after the start"),
    (
        "over three days",
        {"ends_at": "2026-11-23T09:00:01+08:00"},
        "ends_at",
        "is more than three days after the start",
    ),
    ("hours 0", {"credit_hours": 0}, "credit_hours", HOURS_RANGE),
    ("hours -1", {"credit_hours": -1}, "credit_hours", HOURS_RANGE),
    ("hours 101", {"credit_hours": 101}, "credit_hours", HOURS_RANGE),
    ("hours NaN", {"credit_hours": "NaN"}, "credit_hours", HOURS_RANGE),
    ("hours 1.234", {"credit_hours": 1.234}, "credit_hours", "may have at most two decimals"),
    ("hours abc", {"credit_hours": "abc"}, "credit_hours", "must be a number"),
    ("hours true", {"credit_hours": True}, "credit_hours", "must be a number"),
    ("hours a list", {"credit_hours": [3]}, "credit_hours", "must be a number"),
    ("no hours", {"credit_hours": None}, "credit_hours", "is required"),
    ("no title", {"title": None}, "title", "is required"),
    ("topic with spaces", {"topic_code": "T 1"}, "topic_code", v.BAD_CODE),
    (
        "unknown main",
        {"main_venue": "NOSUCH", "roster": _roster_at("NOSUCH")},
        "main_venue",
        NOT_A_VENUE,
    ),
    (
        "main elsewhere",
        {"main_venue": "VEN-B", "roster": _roster_at("VEN-B")},
        "main_venue",
        NOT_A_VENUE,
    ),
    ("no main", {"main_venue": None, "roster": []}, "main_venue", "is required"),
    ("unknown branch", {"branch_venues": ["BRANCH", "NOSUCH"]}, "branch_venues", NOT_A_VENUE),
    # (A roster line at a branch would add its own problem: the branch list is refused whole.)
    ("branch is main", {"branch_venues": ["MAIN"], "roster": AT_MAIN}, "branch_venues", REPEATS),
    (
        "branch twice",
        {"branch_venues": ["BRANCH"] * 2, "roster": AT_MAIN},
        "branch_venues",
        REPEATS,
    ),
    ("branches not a list", {"branch_venues": "BRANCH", "roster": []}, "branch_venues", NOT_CODES),
    ("unknown member", {"roster": [{"member_no": "NOBODY", "venue": "MAIN"}]}, "roster", UNKNOWN),
    ("roster venue outside", {"roster": _roster_at("OTHER")}, "roster[0].venue", NOT_OF_SESSION),
    ("member twice", {"roster": TWICE}, "roster[1].member_no", "repeats a member"),
    (
        "roster not a list",
        {"roster": {"P1": "MAIN"}},
        "roster",
        "must be a list of {member_no, venue}",
    ),
    ("policy key unknown", {"policy": {"colour": 1}}, "policy.colour", "is not a policy field"),
    ("min_ratio 0", {"policy": {"min_ratio": 0}}, "policy.min_ratio", RATIO),
    ("min_ratio 1.5", {"policy": {"min_ratio": 1.5}}, "policy.min_ratio", RATIO),
    ("late grace -1", {"policy": {"late_grace_min": -1}}, "policy.late_grace_min", NEGATIVE),
    ("early grace -10", {"policy": {"early_grace_min": -10}}, "policy.early_grace_min", NEGATIVE),
    ("grace 2.5", {"policy": {"late_grace_min": 2.5}}, "policy.late_grace_min", WHOLE),
    ("interval 0", {"policy": {"stats_interval_s": 0}}, "policy.stats_interval_s", INTERVAL),
    (
        "verification yes",
        {"policy": {"require_stream_verification": "yes"}},
        "policy.require_stream_verification",
        "must be true or false",
    ),
    ("policy not an object", {"policy": "strict"}, "policy", "must be an object"),
    ("plan class not a reference", {"plan_class": "C01"}, "plan_class", NOT_A_CLASS_REF),
    ("plan class year absurd", {"plan_class": "a1/1900/C01"}, "plan_class", NOT_A_CLASS_REF),
    ("plan class a number", {"plan_class": 7}, "plan_class", v.NOT_TEXT),
    ("plan class unknown", {"plan_class": "a1/2026/C99"}, "plan_class", UNKNOWN_CLASS),
]


@pytest.mark.parametrize(
    ("changes", "name", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_SESSIONS],
)
async def test_a_bad_session_is_422_and_writes_nothing(
    site: Site, changes: dict[str, Any], name: str, problem: str
) -> None:
    """Neither as a new session nor as the edit of a scheduled one."""
    body = {key: value for key, value in session_body(**changes).items() if value is not None}
    error = await site.refused("POST", "/api/v1/sessions", 422, fields={name: problem}, json=body)
    assert error["code"] == "invalid"
    path = f"/api/v1/sessions/{site.session_id}"
    before = await site.call("GET", path, site.admin)
    await site.refused("PUT", path, 422, fields={name: problem}, json=body)
    assert await site.call("GET", path, site.admin) == before


async def test_the_limits_themselves_are_allowed(site: Site) -> None:
    limits: list[dict[str, Any]] = [
        {"ends_at": "2026-11-23T09:00:00+08:00"},  # exactly three days
        {"credit_hours": 100},
        {"credit_hours": 0.01},
        {"policy": {"min_ratio": 1, "late_grace_min": 0, "early_grace_min": 0}},
        {"branch_venues": [], "roster": []},
    ]
    for changes in limits:
        status, body = await site.call(
            "POST", "/api/v1/sessions", site.admin, json=session_body(**changes)
        )
        assert status == 201, (changes, body)


@pytest.mark.parametrize("state", STATES[1:])
async def test_a_session_that_has_started_cannot_be_edited(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    path = f"/api/v1/sessions/{public_id}"
    before = await site.call("GET", path, site.admin)
    for who in ("admin", "operator"):
        error = await site.refused(
            "PUT",
            path,
            409,
            {**site.world.auth(who, "a"), **EN},
            json=session_body(title="改过的", credit_hours=1),
        )
        assert error["code"] == "conflict"
    assert await site.call("GET", path, site.admin) == before


@pytest.mark.parametrize("state", STATES)
async def test_a_wrong_transition_is_409_from_every_state(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    for action in ACTIONS:
        if action in ALLOWED[state]:
            continue
        error = await site.refused("POST", f"/api/v1/sessions/{public_id}/{action}", 409)
        assert error["code"] == "conflict", (state, action)
        assert await site.state_of(public_id) == state


@pytest.mark.parametrize("state", STATES[:3])
async def test_attendance_waits_for_finalization(site: Site, state: str) -> None:
    public_id = await site.new_session(state)
    for who in ("admin", "operator", "reviewer"):
        error = await site.refused(
            "GET",
            f"/api/v1/sessions/{public_id}/attendance",
            409,
            {**site.world.auth(who, "a"), **EN},
        )
        assert error["code"] == "conflict"


async def test_only_an_admin_reopens(site: Site) -> None:
    public_id = await site.new_session("approved")
    for who in ("operator", "reviewer", "venue_staff"):
        error = await site.refused(
            "POST",
            f"/api/v1/sessions/{public_id}/reopen",
            403,
            {**site.world.auth(who, "a"), **EN},
        )
        assert error["code"] == "forbidden"
        assert await site.state_of(public_id) == "approved"
    status, body = await site.call("POST", f"/api/v1/sessions/{public_id}/reopen", site.admin)
    assert (status, body["state"]) == (200, "finalized")


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("year=abc", {"year": "must be a whole number"}),
        ("year=1999", {"year": "is out of range"}),
        ("year=2100", {"year": "is out of range"}),
        ("year=2026.5", {"year": "must be a whole number"}),
    ],
)
async def test_record_year(site: Site, query: str, fields: dict[str, str]) -> None:
    await site.refused("GET", f"/api/v1/members/P1/record?{query}", 422, fields=fields)


async def test_a_session_at_the_end_of_the_calendar_is_refused_or_works(site: Site) -> None:
    """9999-12-31 20:00 UTC is already year 10000 in the server's zone: the server either
    refuses such a window when it is scheduled (422 on its times, nothing written), or takes
    the session through its whole life; it never fails half-way."""
    late = session_body(starts_at="9999-12-31T20:00:00Z", ends_at="9999-12-31T23:00:00Z")
    before = await counts(site.db)
    status, body = await site.call("POST", "/api/v1/sessions", site.admin, json=late)
    if status == 422:
        assert set(body["error"]["fields"]) <= {"starts_at", "ends_at"}, body
        assert await counts(site.db) == before
        return
    assert status == 201, body
    for action in ("start", "end", "finalize", "approve"):
        status, moved = await site.call(
            "POST", f"/api/v1/sessions/{body['id']}/{action}", site.admin
        )
        assert status == 200, (action, moved)
    status, attendance = await site.call(
        "GET", f"/api/v1/sessions/{body['id']}/attendance", site.admin
    )
    assert status == 200, attendance
