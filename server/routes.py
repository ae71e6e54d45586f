"""The whole URL map; every route is named and every handler declares who may call it."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.api import (
    agent,
    archive,
    broadcast,
    ice,
    members,
    month_results,
    organizations,
    plans,
    recordings,
    reports,
    rosters,
    self_checkin,
    sessions,
    system,
    tokens,
    venue_streams,
    venues,
    webhooks,
)
from server.page_routes import setup_page_routes
from server.pages import auth as auth_pages

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


def setup_routes(app: web.Application) -> None:
    """Register every route of the server."""
    add = app.router.add_route
    # System
    add("GET", "/healthz", system.get_health, name="health")
    add("GET", "/api/v1/me", system.get_me, name="api_me")
    add("GET", "/api/v1/tokens", tokens.list_tokens, name="api_list_tokens")
    add("POST", "/api/v1/tokens", tokens.create_token, name="api_create_token")
    add("DELETE", "/api/v1/tokens/{id}", tokens.revoke_token, name="api_revoke_token")
    add("GET", "/metrics", system.get_metrics, name="metrics")
    add("POST", "/janus/events", system.post_janus_events, name="janus_events")
    # Organizations, members, venues
    add(
        "POST",
        "/api/v1/organizations",
        organizations.create_organization,
        name="api_create_organization",
    )
    add(
        "GET",
        "/api/v1/organizations",
        organizations.list_organizations,
        name="api_list_organizations",
    )
    add(
        "GET",
        "/api/v1/organizations/{code}",
        organizations.get_organization,
        name="api_get_organization",
    )
    add("POST", "/api/v1/members", members.create_member, name="api_create_member")
    add("POST", "/api/v1/members/import", members.import_members, name="api_import_members")
    add("GET", "/api/v1/members", members.list_members, name="api_list_members")
    add("GET", "/api/v1/members/{member_no}", members.get_member, name="api_get_member")
    add("POST", "/api/v1/venues", venues.create_venue, name="api_create_venue")
    add("GET", "/api/v1/venues", venues.list_venues, name="api_list_venues")
    add("GET", "/api/v1/venues/{code}", venues.get_venue, name="api_get_venue")
    add(
        "POST",
        "/api/v1/venues/{code}/token",
        venues.rotate_venue_token,
        name="api_rotate_venue_token",
    )
    # Sessions, attendance, records
    add("POST", "/api/v1/sessions", sessions.create_session, name="api_create_session")
    add("GET", "/api/v1/sessions", sessions.list_sessions, name="api_list_sessions")
    add("GET", "/api/v1/sessions/{id}", sessions.get_session, name="api_get_session")
    add("GET", "/api/v1/sessions/{id}/wall", sessions.get_wall, name="api_session_wall")
    add("GET", "/api/v1/attendance", month_results.get_month_results, name="api_month_results")
    add(
        "GET",
        "/api/v1/attendance.csv",
        month_results.get_month_results_csv,
        name="api_month_results_csv",
    )
    add(
        "GET",
        "/api/v1/attendance.xlsx",
        month_results.get_month_results_xlsx,
        name="api_month_results_xlsx",
    )
    add(
        "GET",
        "/api/v1/sessions/{id}/venues/{code}/stream",
        venue_streams.get_venue_stream,
        name="api_session_venue_stream",
    )
    add(
        "GET",
        "/api/v1/sessions/{id}/recordings",
        recordings.list_recordings,
        name="api_session_recordings",
    )
    add(
        "GET",
        "/api/v1/sessions/{id}/recordings/{recording}/file",
        recordings.get_recording_file,
        name="api_recording_file",
    )
    add(
        "DELETE",
        "/api/v1/sessions/{id}/recordings/{recording}",
        recordings.delete_recording,
        name="api_delete_recording",
    )
    add("PUT", "/api/v1/sessions/{id}", sessions.update_session, name="api_update_session")
    add("PUT", "/api/v1/sessions/{id}/roster", rosters.put_roster, name="api_session_roster")
    add("POST", "/api/v1/sessions/{id}/broadcast", broadcast.post_broadcast, name="api_broadcast")
    add("POST", "/api/v1/sessions/{id}/replay", broadcast.post_replay, name="api_replay")
    add(
        "DELETE",
        "/api/v1/sessions/{id}/broadcast",
        broadcast.delete_broadcast,
        name="api_end_broadcast",
    )
    for action in ("start", "end", "finalize", "approve", "reopen"):
        add(
            "POST",
            f"/api/v1/sessions/{{id}}/{action}",
            getattr(sessions, f"{action}_session"),
            name=f"api_{action}_session",
        )
    add(
        "GET",
        "/api/v1/sessions/{id}/attendance",
        sessions.get_attendance,
        name="api_session_attendance",
    )
    add(
        "POST",
        "/api/v1/sessions/{id}/attendance/{member_no}/accept",
        sessions.accept_walk_in,
        name="api_accept_walk_in",
    )
    add(
        "GET",
        "/api/v1/members/{member_no}/record",
        sessions.get_member_record,
        name="api_member_record",
    )
    # Training archive (培训档案): registration form and committee cabinet (一党委一专柜)
    add(
        "GET",
        "/api/v1/members/{member_no}/archive",
        archive.get_member_archive,
        name="api_member_archive",
    )
    add(
        "GET",
        "/api/v1/organizations/{code}/cabinet",
        archive.get_cabinet,
        name="api_organization_cabinet",
    )
    # Monthly reports (月报告)
    add("GET", "/api/v1/reports/monthly", reports.get_monthly_report, name="api_monthly_report")
    add(
        "POST",
        "/api/v1/reports/monthly/snapshots",
        reports.create_report_snapshot,
        name="api_create_report_snapshot",
    )
    add(
        "GET",
        "/api/v1/reports/monthly/snapshots",
        reports.list_report_snapshots,
        name="api_list_report_snapshots",
    )
    # Training plans (培训计划备案)
    add("POST", "/api/v1/plans", plans.create_plan, name="api_create_plan")
    add("GET", "/api/v1/plans", plans.list_plans, name="api_list_plans")
    add("GET", "/api/v1/plans/analysis", plans.get_plan_analysis, name="api_plan_analysis")
    add("GET", "/api/v1/plans/{org}/{year}", plans.get_plan, name="api_get_plan")
    add("PUT", "/api/v1/plans/{org}/{year}", plans.update_plan, name="api_update_plan")
    for plan_action in ("file", "accept", "return"):
        add(
            "POST",
            f"/api/v1/plans/{{org}}/{{year}}/{plan_action}",
            getattr(plans, f"{plan_action}_plan"),
            name=f"api_{plan_action}_plan",
        )
    # Signed event callbacks (webhooks)
    add("POST", "/api/v1/webhooks", webhooks.create_webhook, name="api_create_webhook")
    add("GET", "/api/v1/webhooks", webhooks.list_webhooks, name="api_list_webhooks")
    add("GET", "/api/v1/webhooks/{id}", webhooks.get_webhook, name="api_get_webhook")
    add("PUT", "/api/v1/webhooks/{id}", webhooks.update_webhook, name="api_update_webhook")
    add("DELETE", "/api/v1/webhooks/{id}", webhooks.delete_webhook, name="api_delete_webhook")
    add(
        "POST",
        "/api/v1/webhooks/{id}/rotate",
        webhooks.rotate_webhook_secret,
        name="api_rotate_webhook_secret",
    )
    add(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        webhooks.list_webhook_deliveries,
        name="api_list_webhook_deliveries",
    )
    add(
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/replay",
        webhooks.replay_webhook_delivery,
        name="api_replay_webhook_delivery",
    )
    # Agent API
    add("POST", "/api/v1/agent/hello", agent.agent_hello, name="agent_hello")
    add("GET", "/api/v1/agent/events", agent.agent_events, name="agent_events")
    add("GET", "/api/v1/agent/schedule", agent.agent_schedule, name="agent_schedule")
    add("GET", "/api/v1/agent/schedule.ics", agent.agent_schedule_ics, name="agent_schedule_ics")
    add("POST", "/api/v1/agent/heartbeat", agent.agent_heartbeat, name="agent_heartbeat")
    add("POST", "/api/v1/agent/checkins", agent.agent_checkins, name="agent_checkins")
    add("POST", "/api/v1/agent/stream-stats", agent.agent_stream_stats, name="agent_stream_stats")
    add("GET", "/api/v1/agent/ice-servers", ice.agent_ice_servers, name="agent_ice_servers")
    add(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe",
        broadcast.agent_subscribe,
        name="agent_subscribe",
    )
    add(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe/offer",
        broadcast.agent_subscribe_offer,
        name="agent_subscribe_offer",
    )
    add(
        "POST",
        "/api/v1/agent/sessions/{id}/subscribe/answer",
        broadcast.agent_subscribe_answer,
        name="agent_subscribe_answer",
    )
    # Self check-in by phone (扫码签到): public, admitted by a current room-screen code
    add("POST", "/api/v1/self-checkins", self_checkin.post_self_checkin, name="api_self_checkin")
    # Pages: sign-in
    add("GET", "/login", auth_pages.get_login, name="login")
    add("POST", "/login", auth_pages.post_login, name="login_submit")
    add("POST", "/logout", auth_pages.post_logout, name="logout")
    add("GET", "/lang/{locale}", auth_pages.get_language, name="language")
    # Pages: administration
    setup_page_routes(app)
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=True)
