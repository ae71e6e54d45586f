"""Who may call what: every route of the router × every role × (own subtree, other subtree,
anonymous), from one table. A route the table does not know fails the coverage test."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from yarl import URL

from server.app import create_app
from server.db.models import (
    ApiToken,
    AuditEntry,
    Member,
    Organization,
    TrainingSession,
    User,
    Venue,
    WebhookEndpoint,
)
from server.db.session import read_session
from server.settings import Settings
from tests.support.browser import Browser, give_password
from tests.support.class_workflow import step_list_form
from tests.support.client import Client
from tests.support.matrix_seed import (
    MATRIX_YEAR,
    SESSION_START,
    TZ,
    make_session,
    make_token,
    seed_matrix,
    session_at,
)
from tests.support.plan_rows import PLAN_TITLE, make_plan_org, plan_body, plan_form
from tests.support.webhooks import make_webhook
from tests.support.world import ROLES, SECRET, World

PUBLIC, AGENT = "public", "agent"
ALL = frozenset(ROLES)
READERS = frozenset({"admin", "operator", "reviewer"})
VENUE_READERS = READERS | {"venue_staff"}
ADMIN = frozenset({"admin"})
PLANNERS = frozenset({"admin", "operator"})
CLOSERS = frozenset({"admin", "reviewer"})  # finalize and approve
UNKNOWN_REF = "zz-nosuch"

# What only subtree "a" (or "b") holds: a caller of the other subtree must never see these.
MARKS = {
    "a": (
        "凤阳县",
        "西泉镇党委",
        "西泉村党支部",
        "M-A-1",
        "甲党员",
        "VEN-A",
        "西泉会场",
        "spare-a",
        "甲区培训班",
    ),
    "b": ("天长市", "铜城镇党委", "M-B-1", "乙党员", "VEN-B", "铜城会场", "spare-b", "乙区培训班"),
}

Payload = tuple[str, Any]  # ("json" | "form" | "csv" | "multipart", data)


def _csv(ref: str, fresh: str) -> bytes:
    return f"member_no,name,org_code,category\nM-{fresh},导入党员,{ref},ordinary\n".encode()


def _session_form(venue: str, fresh: str) -> dict[str, str]:
    """The same session as the page's form sends it (server/pages/session_form.py)."""
    local = SESSION_START.astimezone(TZ)
    return {
        "title": f"S-{fresh}",
        "topic_code": "T-1",
        "starts_at": local.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (local + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "credit_hours": "2",
        "main_venue": venue,
        "roster_lines": f"M-A-1 {venue}",
        "min_ratio_pct": "80",
        "late_grace_min": "10",
        "early_grace_min": "10",
        "stats_interval_s": "5",
        "require_stream_verification": "on",
    }


WEBHOOK = {"id": "{ref}"}


def _webhook_body(org: str, fresh: str) -> dict[str, Any]:
    url = f"https://1.1.1.1/W-{fresh}"
    return {"url": url, "events": ["session.started"], "org_code": org, "enabled": False}


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Route:
    """One row of the matrix: who may call the route, and a request about subtree "a"."""

    method: str
    path: str
    who: frozenset[str] | str  # roles, PUBLIC or AGENT
    scoped: str = "none"  # "object" (404 outside), "create" (422 outside), "list", "none"
    ref: str = ""  # the subtree-a object or organization the request names
    parts: dict[str, str] = field(default_factory=dict)  # URL parts; "{ref}" is replaced
    body: Callable[[str, str], Payload] | None = None  # (ref, fresh code) → payload
    ok: tuple[int, ...] = (200,)  # what success looks like
    created: tuple[InstrumentedAttribute[str], str] | None = None  # column, "{fresh}" template
    lists: str = ""  # a key of LIST_MARKS: whose own marks the list must show
    # The row's object is a fresh session of subtree "a" in this state, made for each request
    # (its id is the ref), so a state change by one caller does not stand in another's way.
    session_state: str = ""
    after: str = ""  # the state a successful request leaves that session in ("" = unchanged)
    refused: frozenset[str] = frozenset()  # roles the route admits but this request refuses: 403
    query: dict[str, str] = field(default_factory=dict)  # query values; "{ref}" is replaced
    # The row's object is a fresh committee of subtree "a" with a 2026 plan in this state
    # ("none": without a plan); its code is the ref (see make_plan_org).
    plan_state: str = ""
    whole_tree: bool = False  # only a caller of the whole tree passes; the rest of `who`: 403
    # The row's object is a fresh API token (its id is the ref) of the subtree-"a" user of the
    # caller's role: the caller's own, another's for a caller of "b" (404), and one of their
    # subtree for the whole tree's admin.
    fresh_token: bool = False
    # The row's object is a fresh, disabled webhook endpoint of a1 (its id is the ref), with
    # one delivery of the same id.
    fresh_webhook: bool = False


MATRIX: dict[str, Route] = {
    # System and sign-in
    "health": Route("GET", "/healthz", PUBLIC),
    # Public, but answered only to this machine (the tests' client is on 127.0.0.1).
    "metrics": Route("GET", "/metrics", PUBLIC),
    "janus_events": Route("POST", "/janus/events", PUBLIC, body=lambda ref, fresh: ("json", [])),
    "api_me": Route("GET", "/api/v1/me", ALL),
    "api_list_tokens": Route("GET", "/api/v1/tokens", ALL),
    "api_create_token": Route(
        "POST",
        "/api/v1/tokens",
        ALL,
        body=lambda ref, fresh: ("json", {"label": f"T-{fresh}", "expires_days": 30}),
        ok=(201,),
        created=(ApiToken.label, "T-{fresh}"),
    ),
    "api_revoke_token": Route(
        "DELETE", "/api/v1/tokens/{id}", ALL, "object", parts={"id": "{ref}"}, fresh_token=True
    ),
    "login": Route("GET", "/login", PUBLIC, ok=(200, 302)),
    "login_submit": Route(
        "POST",
        "/login",
        PUBLIC,
        body=lambda ref, fresh: ("form", {"username": f"nobody-{fresh}", "password": "x" * 9}),
        ok=(401, 403),  # the form's own answers: wrong password, or no pre-login cookie
    ),
    "logout": Route("POST", "/logout", ALL, body=lambda ref, fresh: ("form", {}), ok=(302,)),
    "language": Route("GET", "/lang/{locale}", PUBLIC, parts={"locale": "en"}, ok=(302,)),
    # Self check-in (扫码签到): public by code. What admits a phone is a current room-screen code
    # signed by the venue's agent (the page) and the pass it gives (the API), so without one
    # every caller, signed in or not, is refused alike.
    "self_checkin": Route(
        "GET",
        "/c/{venue}/{session}/{window}/{code}",
        PUBLIC,
        parts={
            "venue": "VEN-A",
            "session": UNKNOWN_REF,
            "window": "1",
            "code": "n" * 16 + "." + "s" * 22,
        },
        ok=(403,),
    ),
    "api_self_checkin": Route(
        "POST",
        "/api/v1/self-checkins",
        PUBLIC,
        body=lambda ref, fresh: (
            "json",
            {
                "pass": f"VEN-A/x/{fresh}/forged",
                "member_no": "M-A-1",
                "id_last4": "1234",
                "kind": "in",
            },
        ),
        ok=(403,),
    ),
    # JSON API
    "api_create_organization": Route(
        "POST",
        "/api/v1/organizations",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "json",
            {"code": f"O-{fresh}", "name": "新支部", "level": "branch", "parent_code": ref},
        ),
        ok=(201,),
        created=(Organization.code, "O-{fresh}"),
    ),
    "api_list_organizations": Route(
        "GET", "/api/v1/organizations", READERS, "list", lists="organizations"
    ),
    "api_get_organization": Route(
        "GET", "/api/v1/organizations/{code}", READERS, "object", "a1", {"code": "{ref}"}
    ),
    "api_create_member": Route(
        "POST",
        "/api/v1/members",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: (
            "json",
            {"member_no": f"M-{fresh}", "name": "新党员", "org_code": ref, "category": "ordinary"},
        ),
        ok=(201,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "api_import_members": Route(
        "POST",
        "/api/v1/members/import",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: ("csv", _csv(ref, fresh)),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "api_list_members": Route("GET", "/api/v1/members", READERS, "list", lists="members"),
    "api_get_member": Route(
        "GET", "/api/v1/members/{member_no}", READERS, "object", "M-A-1", {"member_no": "{ref}"}
    ),
    "api_create_venue": Route(
        "POST",
        "/api/v1/venues",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: ("json", {"code": f"V-{fresh}", "name": "新会场", "org_code": ref}),
        ok=(201,),
        created=(Venue.code, "V-{fresh}"),
    ),
    "api_list_venues": Route("GET", "/api/v1/venues", VENUE_READERS, "list", lists="venues"),
    "api_get_venue": Route(
        "GET", "/api/v1/venues/{code}", VENUE_READERS, "object", "VEN-A", {"code": "{ref}"}
    ),
    "api_rotate_venue_token": Route(
        "POST", "/api/v1/venues/{code}/token", ADMIN, "object", "VEN-A", {"code": "{ref}"}
    ),
    # Webhooks: a public address (the matrix's app refuses private ones), never sent to, as
    # every endpoint of the matrix is disabled.
    "api_create_webhook": Route(
        "POST",
        "/api/v1/webhooks",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: ("json", _webhook_body(ref, fresh)),
        ok=(201,),
        created=(WebhookEndpoint.url, "https://1.1.1.1/W-{fresh}"),
    ),
    "api_list_webhooks": Route("GET", "/api/v1/webhooks", ADMIN),
    "api_get_webhook": Route(
        "GET", "/api/v1/webhooks/{id}", ADMIN, "object", parts=WEBHOOK, fresh_webhook=True
    ),
    "api_update_webhook": Route(
        "PUT",
        "/api/v1/webhooks/{id}",
        ADMIN,
        "object",
        parts=WEBHOOK,
        body=lambda ref, fresh: ("json", _webhook_body("a1", fresh)),
        fresh_webhook=True,
    ),
    "api_delete_webhook": Route(
        "DELETE", "/api/v1/webhooks/{id}", ADMIN, "object", parts=WEBHOOK, fresh_webhook=True
    ),
    "api_rotate_webhook_secret": Route(
        "POST", "/api/v1/webhooks/{id}/rotate", ADMIN, "object", parts=WEBHOOK, fresh_webhook=True
    ),
    "api_list_webhook_deliveries": Route(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        ADMIN,
        "object",
        parts=WEBHOOK,
        fresh_webhook=True,
    ),
    "api_replay_webhook_delivery": Route(
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/replay",
        ADMIN,
        "object",
        parts={"id": "{ref}", "delivery": "{ref}"},
        fresh_webhook=True,
    ),
    # Sessions, attendance, records
    "api_create_session": Route(
        "POST",
        "/api/v1/sessions",
        PLANNERS,
        "create",
        ref="VEN-A",
        body=lambda ref, fresh: ("json", session_at(ref, fresh)),
        ok=(201,),
        created=(TrainingSession.title, "S-{fresh}"),
    ),
    "api_list_sessions": Route("GET", "/api/v1/sessions", READERS, "list", lists="sessions"),
    "api_get_session": Route(
        "GET",
        "/api/v1/sessions/{id}",
        READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    "api_session_wall": Route(
        "GET",
        "/api/v1/sessions/{id}/wall",
        READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    # Outside the subtree the session does not exist, whichever of its venues is named.
    "api_session_venue_stream": Route(
        "GET",
        "/api/v1/sessions/{id}/venues/{code}/stream",
        READERS,
        "object",
        parts={"id": "{ref}", "code": "VEN-A"},
        session_state="scheduled",
    ),
    "api_session_recordings": Route(
        "GET",
        "/api/v1/sessions/{id}/recordings",
        READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="ended",
    ),
    # A recording of a real broadcast is served and deleted in test_recordings.py; here the
    # session is real and the recording is not, so getting past every check is the 404 that
    # names the recording.
    # A make-up session's replay runs in test_makeup.py; here the session is a live lesson, so
    # getting past every check is the 409 that says so.
    "api_replay": Route(
        "POST",
        "/api/v1/sessions/{id}/replay",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        ok=(409,),
        session_state="scheduled",
    ),
    "api_recording_file": Route(
        "GET",
        "/api/v1/sessions/{id}/recordings/{recording}/file",
        READERS,
        "object",
        parts={"id": "{ref}", "recording": "00000000-0000-4000-8000-000000000000"},
        ok=(404,),
        session_state="ended",
    ),
    "api_delete_recording": Route(
        "DELETE",
        "/api/v1/sessions/{id}/recordings/{recording}",
        ADMIN,
        "object",
        parts={"id": "{ref}", "recording": "00000000-0000-4000-8000-000000000000"},
        ok=(404,),
        session_state="ended",
    ),
    # A real offer is negotiated in test_broadcast.py; here a token offer passes every check
    # but the SDP's own, so success is the 422 that names the SDP.
    "api_broadcast": Route(
        "POST",
        "/api/v1/sessions/{id}/broadcast",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("json", {"sdp": "v=0\r\n", "type": "offer"}),
        ok=(422,),
        session_state="scheduled",
    ),
    "api_end_broadcast": Route(
        "DELETE",
        "/api/v1/sessions/{id}/broadcast",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    "api_update_session": Route(
        "PUT",
        "/api/v1/sessions/{id}",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("json", session_at("VEN-A", fresh)),
        created=(TrainingSession.title, "S-{fresh}"),
        session_state="scheduled",
    ),
    "api_session_roster": Route(
        "PUT",
        "/api/v1/sessions/{id}/roster",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("csv", "党员编号,会场代码\nM-A-1,VEN-A\n".encode()),
        session_state="scheduled",
    ),
    "api_start_session": Route(
        "POST",
        "/api/v1/sessions/{id}/start",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
        after="live",
    ),
    "api_end_session": Route(
        "POST",
        "/api/v1/sessions/{id}/end",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        session_state="live",
        after="ended",
    ),
    "api_finalize_session": Route(
        "POST",
        "/api/v1/sessions/{id}/finalize",
        CLOSERS,
        "object",
        parts={"id": "{ref}"},
        session_state="ended",
        after="finalized",
    ),
    "api_approve_session": Route(
        "POST",
        "/api/v1/sessions/{id}/approve",
        CLOSERS,
        "object",
        parts={"id": "{ref}"},
        session_state="finalized",
        after="approved",
    ),
    "api_reopen_session": Route(
        "POST",
        "/api/v1/sessions/{id}/reopen",
        ADMIN,
        "object",
        parts={"id": "{ref}"},
        session_state="approved",
        after="finalized",
    ),
    "api_session_attendance": Route(
        "GET",
        "/api/v1/sessions/{id}/attendance",
        READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="finalized",
    ),
    # M-A-1 is on the roster: nothing to accept, so an allowed caller passes every check but
    # the last one, and success is the 409 that says so (tests/api/test_scoping.py accepts one).
    "api_accept_walk_in": Route(
        "POST",
        "/api/v1/sessions/{id}/attendance/{member_no}/accept",
        CLOSERS,
        "object",
        parts={"id": "{ref}", "member_no": "M-A-1"},
        ok=(409,),
        session_state="finalized",
    ),
    "api_member_record": Route(
        "GET",
        "/api/v1/members/{member_no}/record",
        READERS,
        "object",
        "M-A-1",
        {"member_no": "{ref}"},
    ),
    # Training archive (培训档案): registration form and committee cabinet
    "api_member_archive": Route(
        "GET",
        "/api/v1/members/{member_no}/archive",
        READERS,
        "object",
        "M-A-1",
        {"member_no": "{ref}"},
        query={"year": "2026"},
    ),
    "api_organization_cabinet": Route(
        "GET",
        "/api/v1/organizations/{code}/cabinet",
        READERS,
        "object",
        "a1",
        {"code": "{ref}"},
        query={"year": "2026"},
    ),
    # Monthly reports: the organization is named in the query or the body
    "api_monthly_report": Route(
        "GET",
        "/api/v1/reports/monthly",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    # A month's results of a subtree: outside it the organization does not exist.
    "api_month_results": Route(
        "GET",
        "/api/v1/attendance",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    "api_month_results_csv": Route(
        "GET",
        "/api/v1/attendance.csv",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    "api_month_results_xlsx": Route(
        "GET",
        "/api/v1/attendance.xlsx",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    "api_create_report_snapshot": Route(
        "POST",
        "/api/v1/reports/monthly/snapshots",
        PLANNERS,
        "object",
        "a1",
        body=lambda ref, fresh: ("json", {"org": ref, "month": "2026-03"}),
        ok=(201,),
    ),
    "api_list_report_snapshots": Route(
        "GET",
        "/api/v1/reports/monthly/snapshots",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    # Training plans (备案): admins file, the level above reviews, operators read
    "api_create_plan": Route(
        "POST",
        "/api/v1/plans",
        ADMIN,
        "create",
        body=lambda ref, fresh: ("json", plan_body(ref, fresh)),
        ok=(201,),
        created=(PLAN_TITLE, "P-{fresh}"),
        plan_state="none",
    ),
    "api_list_plans": Route("GET", "/api/v1/plans", READERS, "list", lists="plans"),
    "api_plan_analysis": Route(
        "GET",
        "/api/v1/plans/analysis",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "year": "2026"},
    ),
    "api_get_plan": Route(
        "GET",
        "/api/v1/plans/{org}/{year}",
        READERS,
        "object",
        "a1",
        {"org": "{ref}", "year": "2026"},
    ),
    "api_update_plan": Route(
        "PUT",
        "/api/v1/plans/{org}/{year}",
        ADMIN,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        body=lambda ref, fresh: ("json", plan_body(ref, fresh)),
        created=(PLAN_TITLE, "P-{fresh}"),
        plan_state="draft",
    ),
    "api_file_plan": Route(
        "POST",
        "/api/v1/plans/{org}/{year}/file",
        ADMIN,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        plan_state="draft",
    ),
    "api_accept_plan": Route(
        "POST",
        "/api/v1/plans/{org}/{year}/accept",
        CLOSERS,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        plan_state="filed",
    ),
    "api_return_plan": Route(
        "POST",
        "/api/v1/plans/{org}/{year}/return",
        CLOSERS,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        body=lambda ref, fresh: ("json", {"comment": "请补充首课"}),
        plan_state="filed",
    ),
    # Agent API (venue token); the ref of stream-stats is a session of the agent's venue
    "agent_hello": Route(
        "POST",
        "/api/v1/agent/hello",
        AGENT,
        body=lambda ref, fresh: ("json", {"agent_version": "1.0", "hostname": "room-pc"}),
    ),
    "agent_schedule": Route("GET", "/api/v1/agent/schedule", AGENT),
    # A WebSocket: a plain GET that passed the token check is told to upgrade (test_live.py
    # holds a real connection).
    "agent_events": Route("GET", "/api/v1/agent/events", AGENT, ok=(422,)),
    "agent_schedule_ics": Route("GET", "/api/v1/agent/schedule.ics", AGENT),
    "agent_ice_servers": Route("GET", "/api/v1/agent/ice-servers", AGENT),
    "agent_heartbeat": Route(
        "POST",
        "/api/v1/agent/heartbeat",
        AGENT,
        body=lambda ref, fresh: (
            "json",
            {"state": "idle", "session_id": None, "queue_depth": 0, "agent_version": "1.0"},
        ),
    ),
    "agent_checkins": Route(
        "POST",
        "/api/v1/agent/checkins",
        AGENT,
        body=lambda ref, fresh: ("json", {"sent_at": _now(), "events": []}),
    ),
    "agent_subscribe": Route(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe",
        AGENT,
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("json", {"sdp": "v=0\r\n", "type": "offer"}),
        ok=(422,),
        session_state="scheduled",
    ),
    "agent_subscribe_offer": Route(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe/offer",
        AGENT,
        parts={"id": "{ref}"},
        ok=(409,),  # nothing on air
        session_state="scheduled",
    ),
    "agent_subscribe_answer": Route(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe/answer",
        AGENT,
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("json", {"sdp": "v=0\r\n", "type": "answer", "token": "t"}),
        ok=(422,),
        session_state="scheduled",
    ),
    "agent_stream_stats": Route(
        "POST",
        "/api/v1/agent/stream-stats",
        AGENT,
        body=lambda ref, fresh: (
            "json",
            {
                "sent_at": _now(),
                "session_id": ref,
                "samples": [{"at": SESSION_START.isoformat(), "state": "good", "fps": 25}],
            },
        ),
    ),
    # Pages
    "home": Route("GET", "/", ALL),
    "organizations": Route("GET", "/organizations", READERS, "list", lists="organizations"),
    "organization_create": Route(
        "POST",
        "/organizations",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "form",
            {"code": f"O-{fresh}", "name": "新支部", "level": "branch", "parent_code": ref},
        ),
        ok=(303,),
        created=(Organization.code, "O-{fresh}"),
    ),
    "members": Route("GET", "/members", READERS, "list", lists="members"),
    "member_create": Route(
        "POST",
        "/members",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: (
            "form",
            {"member_no": f"M-{fresh}", "name": "新党员", "org_code": ref, "category": "ordinary"},
        ),
        ok=(303,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "members_import": Route(
        "POST",
        "/members/import",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: ("multipart", _csv(ref, fresh)),
        ok=(303,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "member": Route(
        "GET", "/members/{member_no}", READERS, "object", "M-A-1", {"member_no": "{ref}"}
    ),
    "member_archive": Route(
        "GET",
        "/members/{member_no}/archive/{year}",
        READERS,
        "object",
        "M-A-1",
        {"member_no": "{ref}", "year": "2026"},
    ),
    "organization_cabinet": Route(
        "GET",
        "/organizations/{code}/cabinet",
        READERS,
        "object",
        "a1",
        {"code": "{ref}"},
        query={"year": "2026"},
    ),
    "organization_cabinet_xlsx": Route(
        "GET",
        "/organizations/{code}/cabinet.xlsx",
        READERS,
        "object",
        "a1",
        {"code": "{ref}"},
        query={"year": "2026"},
    ),
    "organization_cabinet_csv": Route(
        "GET",
        "/organizations/{code}/cabinet.csv",
        READERS,
        "object",
        "a1",
        {"code": "{ref}"},
        query={"year": "2026"},
    ),
    # Every member's registration form of a committee's subtree in one document
    "organization_cabinet_forms": Route(
        "GET",
        "/organizations/{code}/cabinet/forms",
        READERS,
        "object",
        "a1",
        {"code": "{ref}"},
        query={"year": "2026"},
    ),
    "venues": Route("GET", "/venues", VENUE_READERS, "list", lists="venues"),
    "venue_create": Route(
        "POST",
        "/venues",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: ("form", {"code": f"V-{fresh}", "name": "新会场", "org_code": ref}),
        created=(Venue.code, "V-{fresh}"),
    ),
    "venue_token_confirm": Route(
        "GET", "/venues/{code}/token", ADMIN, "object", "VEN-A", {"code": "{ref}"}
    ),
    "venue_token_rotate": Route(
        "POST",
        "/venues/{code}/token",
        ADMIN,
        "object",
        "VEN-A",
        {"code": "{ref}"},
        body=lambda ref, fresh: ("form", {}),
    ),
    "sessions": Route("GET", "/sessions", VENUE_READERS, "list", lists="sessions"),
    "session_new": Route("GET", "/sessions/new", PLANNERS),
    "session_create": Route(
        "POST",
        "/sessions",
        PLANNERS,
        "create",
        ref="VEN-A",
        # No roster: the form shows a refused caller what they typed, member numbers too.
        body=lambda ref, fresh: ("form", {**_session_form(ref, fresh), "roster_lines": ""}),
        ok=(303,),
        created=(TrainingSession.title, "S-{fresh}"),
    ),
    "session": Route(
        "GET",
        "/sessions/{id}",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    "session_action": Route(
        "POST",
        "/sessions/{id}/{action}",
        READERS,  # the handler refuses actions the role may not take
        "object",
        parts={"id": "{ref}", "action": "start"},
        body=lambda ref, fresh: ("form", {}),
        ok=(303,),
        session_state="scheduled",
        after="live",
        refused=frozenset({"reviewer"}),
    ),
    "session_edit": Route(
        "GET",
        "/sessions/{id}/edit",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    "session_update": Route(
        "POST",
        "/sessions/{id}/edit",
        PLANNERS,
        "object",
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("form", _session_form("VEN-A", fresh)),
        ok=(303,),
        created=(TrainingSession.title, "S-{fresh}"),
        session_state="scheduled",
    ),
    "session_console": Route(
        "GET",
        "/sessions/{id}/console",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
    ),
    # A WebSocket: a plain GET that passed every check is told to upgrade (test_wall.py holds a
    # real connection).
    "session_live": Route(
        "GET",
        "/sessions/{id}/live",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="scheduled",
        ok=(422,),
    ),
    "session_attendance": Route(
        "GET",
        "/sessions/{id}/attendance",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="finalized",
    ),
    "session_recordings": Route(
        "GET",
        "/sessions/{id}/recordings",
        READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="ended",
    ),
    "session_attendance_csv": Route(
        "GET",
        "/sessions/{id}/attendance.csv",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="finalized",
    ),
    "session_attendance_xlsx": Route(
        "GET",
        "/sessions/{id}/attendance.xlsx",
        VENUE_READERS,
        "object",
        parts={"id": "{ref}"},
        session_state="finalized",
    ),
    # Monthly report pages: the organization is named in the query or the form
    "report_monthly": Route(
        "GET",
        "/reports/monthly",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    "report_monthly_xlsx": Route(
        "GET",
        "/reports/monthly.xlsx",
        READERS,
        "object",
        "a1",
        query={"org": "{ref}", "month": "2026-03"},
    ),
    # The ten-step class workflow (十步工作法): a class of a1's plan
    # (tests/pages/test_class_workflow.py)
    "class_workflow": Route(
        "GET",
        "/plans/{org}/{year}/classes/{code}",
        READERS,
        "object",
        "a1",
        {"org": "{ref}", "year": str(MATRIX_YEAR), "code": "C01"},
    ),
    "class_step_mark": Route(
        "POST",
        "/plans/{org}/{year}/classes/{code}/steps/{key}",
        PLANNERS,
        "object",
        "a1",
        {"org": "{ref}", "year": str(MATRIX_YEAR), "code": "C01", "key": "faculty"},
        body=lambda ref, fresh: ("form", {"done": "on", "note": ""}),
        ok=(303,),
    ),
    "class_print": Route(
        "GET",
        "/plans/{org}/{year}/classes/{code}/print/{template}",
        READERS,
        "object",
        "a1",
        {"org": "{ref}", "year": str(MATRIX_YEAR), "code": "C01", "template": "signin_sheet"},
    ),
    # The sign-in sheet a run and venue at a time: a venue's staff get their venues' sheets
    # (tests/e2e/test_print_layouts.py)
    "class_signin_sheet": Route(
        "GET",
        "/plans/{org}/{year}/classes/{code}/signin-sheet",
        VENUE_READERS,
        "object",
        "a1",
        {"org": "{ref}", "year": str(MATRIX_YEAR), "code": "C01"},
    ),
    "workflow_steps": Route("GET", "/workflow-steps", ADMIN, whole_tree=True),
    "workflow_steps_update": Route(
        "POST",
        "/workflow-steps",
        ADMIN,
        body=lambda ref, fresh: ("form", step_list_form()),
        ok=(303,),
        whole_tree=True,
    ),
    "report_snapshot_create": Route(
        "POST",
        "/reports/monthly/snapshots",
        PLANNERS,
        "object",
        "a1",
        body=lambda ref, fresh: ("form", {"org": ref, "month": "2026-03"}),
        ok=(303,),
    ),
    "plans": Route("GET", "/plans", READERS, "list", lists="plans", query={"year": "2026"}),
    "plan_new": Route("GET", "/plans/new", ADMIN),
    "plan_create": Route(
        "POST",
        "/plans",
        ADMIN,
        "create",
        body=lambda ref, fresh: ("form", plan_form(ref, fresh)),
        ok=(303,),
        created=(PLAN_TITLE, "P-{fresh}"),
        plan_state="none",
    ),
    "plan": Route(
        "GET", "/plans/{org}/{year}", READERS, "object", "a1", {"org": "{ref}", "year": "2026"}
    ),
    "plan_edit": Route(
        "GET", "/plans/{org}/{year}/edit", ADMIN, "object", "a1", {"org": "{ref}", "year": "2026"}
    ),
    "plan_update": Route(
        "POST",
        "/plans/{org}/{year}/edit",
        ADMIN,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        body=lambda ref, fresh: ("form", plan_form(ref, fresh)),
        ok=(303,),
        created=(PLAN_TITLE, "P-{fresh}"),
        plan_state="draft",
    ),
    "plan_file": Route(
        "POST",
        "/plans/{org}/{year}/file",
        ADMIN,
        "object",
        parts={"org": "{ref}", "year": "2026"},
        body=lambda ref, fresh: ("form", {}),
        ok=(303,),
        plan_state="draft",
    ),
    "plan_review": Route(
        "POST",
        "/plans/{org}/{year}/{action}",
        CLOSERS,
        "object",
        parts={"org": "{ref}", "year": "2026", "action": "return"},
        body=lambda ref, fresh: ("form", {"comment": "请补充首课"}),
        ok=(303,),
        plan_state="filed",
    ),
    "users": Route("GET", "/users", ADMIN, "list", lists="users"),
    "user_create": Route(
        "POST",
        "/users",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "form",
            {
                "username": f"u-{fresh}",
                "display_name": "新用户",
                "role": "reviewer",
                "org_code": ref,
                "password": "long-enough-password",
            },
        ),
        ok=(303,),
        created=(User.username, "u-{fresh}"),
    ),
    "user_update": Route(
        "POST",
        "/users/{username}",
        ADMIN,
        "object",
        "spare-a",
        {"username": "{ref}"},
        body=lambda ref, fresh: (
            "form",
            {"role": "operator", "org_code": "a1", "display_name": ref, "is_active": "on"},
        ),
        ok=(303,),
    ),
    "user_password": Route(
        "POST",
        "/users/{username}/password",
        ADMIN,
        "object",
        "spare-a",
        {"username": "{ref}"},
        body=lambda ref, fresh: ("form", {"password": "another-long-password"}),
        ok=(303,),
    ),
    # The webhooks page: as the API's rows, never enabling an endpoint (nothing is sent).
    "webhooks": Route("GET", "/webhooks", ADMIN),
    "webhook_create": Route(
        "POST",
        "/webhooks",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "form",
            {"url": f"https://1.1.1.1/W-{fresh}", "org_code": ref, "events": "session.started"},
        ),
        ok=(200,),
        created=(WebhookEndpoint.url, "https://1.1.1.1/W-{fresh}"),
    ),
    "webhook_switch": Route(
        "POST",
        "/webhooks/{id}/switch",
        ADMIN,
        "object",
        parts=WEBHOOK,
        body=lambda ref, fresh: ("form", {"enabled": "0"}),
        fresh_webhook=True,
    ),
    "webhook_rotate": Route(
        "POST",
        "/webhooks/{id}/rotate",
        ADMIN,
        "object",
        parts=WEBHOOK,
        body=lambda ref, fresh: ("form", {}),
        fresh_webhook=True,
    ),
    "webhook_delete": Route(
        "POST",
        "/webhooks/{id}/delete",
        ADMIN,
        "object",
        parts=WEBHOOK,
        body=lambda ref, fresh: ("form", {}),
        fresh_webhook=True,
    ),
    "webhook_deliveries": Route(
        "GET", "/webhooks/{id}/deliveries", ADMIN, "object", parts=WEBHOOK, fresh_webhook=True
    ),
    "webhook_replay": Route(
        "POST",
        "/webhooks/{id}/deliveries/{delivery}/replay",
        ADMIN,
        "object",
        parts={"id": "{ref}", "delivery": "{ref}"},
        body=lambda ref, fresh: ("form", {}),
        fresh_webhook=True,
    ),
    "tokens": Route("GET", "/tokens", ALL),
    "token_create": Route(
        "POST",
        "/tokens",
        ALL,
        body=lambda ref, fresh: ("form", {"label": f"T-{fresh}", "expires_days": "30"}),
        created=(ApiToken.label, "T-{fresh}"),
    ),
    "token_revoke": Route(
        "POST",
        "/tokens/{id}/revoke",
        ALL,
        "object",
        parts={"id": "{ref}"},
        body=lambda ref, fresh: ("form", {}),
        ok=(303,),
        fresh_token=True,
    ),
}
LIST_MARKS = {
    "organizations": {"a": "凤阳县", "b": "天长市"},
    "members": {"a": "M-A-1", "b": "M-B-1"},
    "venues": {"a": "VEN-A", "b": "VEN-B"},
    "users": {"a": "spare-a", "b": "spare-b"},
    "sessions": {"a": "甲区培训班", "b": "乙区培训班"},
    "plans": {"a": "甲区培训计划", "b": "乙区培训计划"},
}


def router_routes(settings: Settings) -> dict[str, web.AbstractRoute]:
    """Every named route of the real app, except static files and HEAD twins of GET routes."""
    found: dict[str, web.AbstractRoute] = {}
    for route in create_app(settings).router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        assert route.name, f"{route.method} {route.resource} has no name"
        found[route.name] = route
    return found


def test_router_and_matrix_agree(settings: Settings) -> None:
    """Every route is in the matrix with its method and path, and every matrix row is routed."""
    routes = router_routes(settings)
    unknown = sorted(set(routes) - set(MATRIX))
    missing = sorted(set(MATRIX) - set(routes))
    assert not unknown, f"routes without a row in the authorization matrix: {unknown}"
    assert not missing, f"matrix rows whose routes are not in the router (yet?): {missing}"
    for name, route in routes.items():
        row = MATRIX[name]
        canonical = route.resource.canonical if route.resource else ""
        assert (route.method, canonical) == (row.method, row.path), name


@dataclass
class Caller:
    """Who sends a request: a role in a subtree (token for the API, cookie for pages) or nobody."""

    role: str | None
    subtree: str | None
    token: str | None = None
    browser: Browser | None = None
    csrf: str | None = None

    def __str__(self) -> str:
        return f"{self.role}@{self.subtree}" if self.role else "anonymous"


@dataclass
class Answer:
    """What came back."""

    status: int
    headers: Any
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def readable(body: bytes) -> str:
    """An answer as text to search for marks: a spreadsheet (a zip) by the XML inside it."""
    if body.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(
                archive.read(name).decode("utf-8", "replace")
                for name in archive.namelist()
                if name.endswith(".xml")
            )
    return body.decode("utf-8", "replace")


def path_of(route: Route, ref: str) -> str:
    """The row's path about one object (with its query, when it has one)."""
    path = route.path.format(**{k: v.format(ref=ref) for k, v in route.parts.items()})
    if route.query:
        path += "?" + urlencode({k: v.format(ref=ref) for k, v in route.query.items()})
    return path


async def state_of(db: async_sessionmaker[AsyncSession], public_id: str) -> str | None:
    """The stored state of a session."""
    async with read_session(db) as session:
        state: str | None = await session.scalar(
            select(TrainingSession.state).where(TrainingSession.public_id == public_id)
        )
    return state


class Run:
    """One app, seeded once, and every request of the matrix sent to it."""

    def __init__(self, client: Client, db: async_sessionmaker[AsyncSession]) -> None:
        self.db = db
        self.plain = Browser(client)  # bearer-token and anonymous API calls; never signed in
        self.counter = itertools.count(1)
        self.failures: list[str] = []

    def fresh(self) -> str:
        return f"{next(self.counter):04d}"

    async def ref_for(self, route: Route, caller: Caller) -> str:
        """The object the request names: the row's ref, or a session (plan, token) made for
        this request."""
        if route.fresh_webhook:
            return await make_webhook(self.db, SECRET, with_delivery=True)
        if route.fresh_token:
            owner = f"{(caller.role or 'admin').replace('_', '-')}-a"
            return await make_token(self.db, owner, next(self.counter))
        if route.session_state:
            return await make_session(self.db, route.session_state)
        if route.plan_state:
            return await make_plan_org(self.db, route.plan_state)
        return route.ref

    async def send(self, caller: Caller, route: Route, ref: str, fresh: str) -> Answer:
        path = path_of(route, ref)
        page = not path.startswith("/api/") and route.who != PUBLIC
        browser = caller.browser if (page or route.who == PUBLIC) and caller.browser else self.plain
        headers: dict[str, str] = {}
        if caller.token and browser is self.plain:
            headers["Authorization"] = f"Bearer {caller.token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if route.body is not None:
            kind, data = route.body(ref, fresh)
            csrf = {"csrf_token": caller.csrf} if caller.csrf and browser is not self.plain else {}
            if kind == "json":
                kwargs["json"] = data
            elif kind == "csv":
                kwargs["data"] = data
                headers["Content-Type"] = "text/csv"
            elif kind == "form":
                kwargs["data"] = {**data, **csrf}
            else:
                form = aiohttp.FormData()
                for name, value in csrf.items():
                    form.add_field(name, value)
                form.add_field("file", data, filename="members.csv", content_type="text/csv")
                kwargs["data"] = form
        async with browser.request(route.method, path, **kwargs) as response:
            return Answer(response.status, response.headers, readable(await response.read()))

    async def exists(self, route: Route, fresh: str) -> bool:
        assert route.created is not None
        column, template = route.created
        async with read_session(self.db) as session:
            count = await session.scalar(
                select(func.count()).where(column == template.format(fresh=fresh))
            )
        return bool(count)

    def fail(self, name: str, caller: Caller, problem: str, answer: Answer) -> None:
        self.failures.append(
            f"{name} as {caller}: {problem} (got {answer.status}: {answer.text[:160]!r})"
        )

    async def check(self, name: str, route: Route, caller: Caller) -> None:
        """Send the row's request as the caller and compare the answer with the matrix."""
        fresh = self.fresh()
        ref = await self.ref_for(route, caller)
        answer = await self.send(caller, route, ref, fresh)
        api = route.path.startswith("/api/")
        if answer.status >= 500:
            self.fail(name, caller, "server error", answer)
            return
        if route.who == PUBLIC:
            if answer.status not in route.ok:
                self.fail(name, caller, f"public route should answer {route.ok}", answer)
            return
        if caller.role is None or route.who == AGENT:
            self._expect_unauthenticated(name, route, caller, answer, api, ref)
        elif (
            caller.role not in route.who
            or caller.role in route.refused
            or (route.whole_tree and caller.subtree != "all")
        ):
            if answer.status != 403:
                self.fail(name, caller, "wrong role must be 403", answer)
            elif api and answer.json()["error"]["code"] != "forbidden":
                self.fail(name, caller, "403 without code forbidden", answer)
        else:
            await self._expect_allowed(name, route, caller, answer, fresh, ref)
            return
        if route.created is not None and await self.exists(route, fresh):
            self.fail(name, caller, "refused, yet something was created", answer)
        await self._expect_state(name, route, caller, answer, ref, route.session_state)

    async def _expect_state(
        self, name: str, route: Route, caller: Caller, answer: Answer, ref: str, state: str
    ) -> None:
        """The request's session is in the state it should be in now."""
        if route.session_state and await state_of(self.db, ref) != state:
            self.fail(name, caller, f"the session should be {state}", answer)

    async def _expect_allowed(
        self, name: str, route: Route, caller: Caller, answer: Answer, fresh: str, ref: str
    ) -> None:
        """The role may call the route: it works on its own subtree, and sees only that."""
        if caller.subtree == "b" and route.scoped in ("object", "create"):
            await self._expect_invisible(name, route, caller, answer, fresh, ref)
            await self._expect_state(name, route, caller, answer, ref, route.session_state)
            return
        if answer.status not in route.ok:
            self.fail(name, caller, f"allowed caller should get {route.ok}", answer)
            return
        if route.created is not None and not await self.exists(route, fresh):
            self.fail(name, caller, "success answered but nothing was created", answer)
        await self._expect_state(
            name, route, caller, answer, ref, route.after or route.session_state
        )
        if route.scoped == "list":
            own = LIST_MARKS[route.lists]
            for subtree in ("a", "b"):
                if caller.subtree in (subtree, "all") and own[subtree] not in answer.text:
                    self.fail(name, caller, f"list lacks its own {own[subtree]!r}", answer)
        self._expect_no_leak(name, caller, answer)

    def _expect_unauthenticated(
        self, name: str, route: Route, caller: Caller, answer: Answer, api: bool, ref: str
    ) -> None:
        if api:
            if answer.status != 401:
                self.fail(name, caller, "must be 401", answer)
            elif answer.json()["error"]["code"] != "unauthorized":
                self.fail(name, caller, "401 without code unauthorized", answer)
        elif route.method == "GET":
            target = URL(answer.headers.get("Location", ""))
            path = path_of(route, ref)
            if answer.status != 302 or (target.path, target.query.get("next")) != ("/login", path):
                self.fail(name, caller, f"must redirect to /login?next={path}", answer)
        elif answer.status not in (401, 403):
            self.fail(name, caller, "page POST must be 401 or 403", answer)

    async def _expect_invisible(
        self, name: str, route: Route, caller: Caller, answer: Answer, fresh: str, ref: str
    ) -> None:
        """Outside the caller's subtree an object answers exactly as one that does not exist."""
        expected = 404 if route.scoped == "object" else 422
        if answer.status != expected:
            self.fail(name, caller, f"other subtree must be {expected}", answer)
            return
        if route.created is not None and await self.exists(route, fresh):
            self.fail(name, caller, "created in another subtree", answer)
        other_fresh = self.fresh()
        unknown = await self.send(caller, route, UNKNOWN_REF, other_fresh)

        def normal(text: str) -> str:
            for value, placeholder in (
                (ref, "<REF>"),
                (UNKNOWN_REF, "<REF>"),
                (fresh, "<FRESH>"),
                (other_fresh, "<FRESH>"),
            ):
                text = text.replace(value, placeholder)
            return text

        if (unknown.status, normal(unknown.text)) != (answer.status, normal(answer.text)):
            self.fail(name, caller, "answers differently from a code that does not exist", answer)
        self._expect_no_leak(name, caller, Answer(answer.status, {}, normal(answer.text)))

    def _expect_no_leak(self, name: str, caller: Caller, answer: Answer) -> None:
        """Nothing of the other subtree shows in any answer: no names, codes or numbers."""
        other = {"a": "b", "b": "a"}.get(caller.subtree or "")
        leaked = [mark for mark in MARKS[other] if mark in answer.text] if other else []
        if leaked:
            self.fail(name, caller, f"shows the other subtree's {leaked}", answer)


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
async def test_matrix(
    role: str | None,
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
    settings: Settings,
) -> None:
    """Every routed row of the matrix, as this role in subtree a, b (and the whole tree), or
    as nobody; every failing cell is listed. Rows not yet routed are the coverage test's."""
    await seed_matrix(db)
    routed = router_routes(settings)
    run = Run(client, db)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(run.plain)
        callers: list[Caller] = []
        if role is None:
            callers.append(Caller(None, None, browser=run.plain))
        else:
            subtrees = ["a", "b", "all"] if role == "admin" else ["a", "b"]
            for subtree in subtrees:
                username = "root" if subtree == "all" else f"{role.replace('_', '-')}-{subtree}"
                await give_password(db, username)
                browser = await stack.enter_async_context(Browser(client))
                csrf = await browser.signed_in(username) if "home" in routed else None
                if csrf is None:
                    await browser.sign_in(username)
                token = world.tokens[f"{role}@{subtree}"]
                callers.append(Caller(role, subtree, token, browser, csrf))
        # Signing out last, so every other row still has a session to use.
        order = sorted(MATRIX, key=lambda name: (name == "logout", name))
        for name in order:
            if name not in routed:
                continue
            for caller in callers:
                await run.check(name, MATRIX[name], caller)
    assert not run.failures, "\n".join(["authorization matrix failures:", *run.failures])


@pytest.mark.parametrize("name", [name for name, row in MATRIX.items() if row.who == AGENT])
async def test_agent_routes_need_the_venue_token(
    name: str,
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    """No token, a made-up one, a user's hu_ token or a rotated one: 401; the venue's own: OK."""
    route = MATRIX[name]
    created = await client.post(
        "/api/v1/venues",
        json={"code": "AGENT-1", "name": "会场", "org_code": "a1"},
        headers=world.auth("admin", "a"),
    )
    assert created.status == 201
    token = (await created.json())["token"]
    assert token.startswith("hv_")
    scheduled = await client.post(
        "/api/v1/sessions",
        json={**session_at("AGENT-1", "agent"), "roster": []},
        headers=world.auth("operator", "a"),
    )
    assert scheduled.status == 201, await scheduled.text()
    session_id = (await scheduled.json())["id"]
    run = Run(client, db)
    async with run.plain:

        async def call(authorization: str | None) -> Answer:
            headers = {"Authorization": authorization} if authorization else {}
            kwargs: dict[str, Any] = {"headers": headers}
            if route.body is not None:
                kwargs["json"] = route.body(session_id, "")[1]
            parts = {key: value.replace("{ref}", session_id) for key, value in route.parts.items()}
            path = route.path.format(**parts)
            async with run.plain.request(route.method, path, **kwargs) as response:
                return Answer(response.status, response.headers, await response.text())

        refused = [
            None,
            "Bearer",
            "Bearer hv_not-a-real-token",
            f"Bearer {world.tokens['admin@a']}",
            f"Basic {token}",
            token,
        ]
        for authorization in refused:
            answer = await call(authorization)
            assert answer.status == 401, (authorization, answer)
            assert answer.json()["error"]["code"] == "unauthorized"
        accepted = await call(f"Bearer {token}")
        assert accepted.status in route.ok, accepted
        rotated = await client.post("/api/v1/venues/AGENT-1/token", headers=world.auth("admin"))
        assert rotated.status == 200
        new_token = (await rotated.json())["token"]
        assert (await call(f"Bearer {token}")).status == 401
        accepted = await call(f"Bearer {new_token}")
        assert accepted.status in route.ok, accepted


async def test_a_branch_venue_sees_a_joint_session_but_only_the_owner_changes_it(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    """A session owned by subtree a with a branch venue of subtree b: b's users see it (and,
    in its attendance, only their own members); every change b tries is 403, and changes
    nothing; the owner's users still may."""
    await seed_matrix(db)
    english = {"Accept-Language": "en"}
    refusal = "Only the organizing organization may change this session."

    def as_(role: str, subtree: str) -> dict[str, str]:
        return {**world.auth(role, subtree), **english}

    scheduled = await make_session(db, subtree="a", branch="VEN-B")
    for role in ("admin", "operator", "reviewer"):
        answer = await client.get(f"/api/v1/sessions/{scheduled}", headers=as_(role, "b"))
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        assert (body["main_venue"], body["branch_venues"]) == ("VEN-A", ["VEN-B"])
        listed = await client.get("/api/v1/sessions", headers=as_(role, "b"))
        assert scheduled in {item["id"] for item in (await listed.json())["sessions"]}

    wrong: list[str] = []  # every refusal is checked; all that went wrong is listed at the end

    async def refused(method: str, path: str, role: str, public_id: str, state: str) -> None:
        kwargs: dict[str, Any] = {}
        if method == "PUT":
            kwargs["json"] = {**session_at("VEN-A", "b"), "title": "乙改的"}
        answer = await client.request(method, path, headers=as_(role, "b"), **kwargs)
        error = (await answer.json()).get("error", {})
        if (answer.status, error.get("code"), error.get("message")) != (403, "forbidden", refusal):
            wrong.append(f"{method} {path} as {role}@b ({state}): {answer.status} {error}")
        if await state_of(db, public_id) != state:
            wrong.append(f"{method} {path} as {role}@b changed the state from {state}")

    path = f"/api/v1/sessions/{scheduled}"
    for role in ("admin", "operator"):
        await refused("PUT", path, role, scheduled, "scheduled")
        await refused("POST", f"{path}/start", role, scheduled, "scheduled")
    cases = (
        ("live", "end", ("admin", "operator")),
        ("ended", "finalize", ("admin", "reviewer")),
        ("finalized", "finalize", ("admin", "reviewer")),
        ("finalized", "approve", ("admin", "reviewer")),
        ("approved", "reopen", ("admin",)),
    )
    for state, action, roles in cases:
        public_id = await make_session(db, state, subtree="a", branch="VEN-B")
        async with read_session(db) as session:
            audit_before = await session.scalar(select(func.count()).select_from(AuditEntry))
        for role in roles:
            await refused("POST", f"/api/v1/sessions/{public_id}/{action}", role, public_id, state)
        async with read_session(db) as session:
            audit_after = await session.scalar(select(func.count()).select_from(AuditEntry))
            title = await session.scalar(
                select(TrainingSession.title).where(TrainingSession.public_id == scheduled)
            )
        assert audit_after == audit_before, f"a refused {action} was audited"
    assert title == "甲区培训班"
    # The owner may.
    started = await client.post(f"{path}/start", headers=as_("operator", "a"))
    assert started.status == 200 and (await started.json())["state"] == "live"
    # The attendance of a joint session shows each subtree its own members only.
    finalized = await make_session(db, "finalized", subtree="a", branch="VEN-B")
    answer = await client.get(
        f"/api/v1/sessions/{finalized}/attendance", headers=as_("reviewer", "b")
    )
    text = await answer.text()
    assert answer.status == 200, text
    body = json.loads(text)
    assert [m["member_no"] for m in body["members"]] == ["M-B-1"]
    assert body["summary"]["expected"] == 1
    assert "甲党员" not in text and "M-A-1" not in text
    owner = await client.get(
        f"/api/v1/sessions/{finalized}/attendance", headers=as_("reviewer", "a")
    )
    assert [m["member_no"] for m in (await owner.json())["members"]] == ["M-A-1"]
    root = await client.get(f"/api/v1/sessions/{finalized}/attendance", headers=as_("admin", "all"))
    assert [m["member_no"] for m in (await root.json())["members"]] == ["M-A-1", "M-B-1"]
    assert not wrong, "\n".join(["a branch venue's users must get 403:", *wrong])
