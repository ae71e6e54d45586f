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


def setup_page_routes(app: web.Application) -> None:
    """The administration pages."""
    # Imported here so this function is the one place the page map changes.
    from server.domain.vocabulary import SESSION_ACTIONS
    from server.pages import archive as archive_pages
    from server.pages import attendance as attendance_pages
    from server.pages import class_workflow as class_pages
    from server.pages import console as console_pages
    from server.pages import home as home_pages
    from server.pages import members as member_pages
    from server.pages import organizations as org_pages
    from server.pages import plans as plan_pages
    from server.pages import recordings as recording_pages
    from server.pages import reports as report_pages
    from server.pages import self_checkin as self_checkin_pages
    from server.pages import sessions as session_pages
    from server.pages import tokens as token_pages
    from server.pages import users as user_pages
    from server.pages import venues as venue_pages
    from server.pages import webhooks as webhook_pages

    add = app.router.add_route
    add("GET", "/", home_pages.get_home, name="home")
    add(
        "GET",
        "/c/{venue}/{session}/{window}/{code}",
        self_checkin_pages.get_self_checkin,
        name="self_checkin",
    )
    add("GET", "/organizations", org_pages.get_organizations, name="organizations")
    add("POST", "/organizations", org_pages.create_organization, name="organization_create")
    add("GET", "/members", member_pages.get_members, name="members")
    add("POST", "/members", member_pages.create_member, name="member_create")
    add("POST", "/members/import", member_pages.import_members, name="members_import")
    add("GET", "/members/{member_no}", member_pages.get_member, name="member")
    add(
        "GET",
        "/members/{member_no}/archive/{year}",
        archive_pages.get_registration_form,
        name="member_archive",
    )
    add(
        "GET",
        "/organizations/{code}/cabinet",
        archive_pages.get_cabinet,
        name="organization_cabinet",
    )
    add(
        "GET",
        "/organizations/{code}/cabinet.xlsx",
        archive_pages.get_cabinet_xlsx,
        name="organization_cabinet_xlsx",
    )
    add(
        "GET",
        "/organizations/{code}/cabinet.csv",
        archive_pages.get_cabinet_csv,
        name="organization_cabinet_csv",
    )
    add(
        "GET",
        "/organizations/{code}/cabinet/forms",
        archive_pages.get_cabinet_forms,
        name="organization_cabinet_forms",
    )
    add("GET", "/venues", venue_pages.get_venues, name="venues")
    add("POST", "/venues", venue_pages.create_venue, name="venue_create")
    add(
        "GET",
        "/venues/{code}/token",
        venue_pages.confirm_token_rotation,
        name="venue_token_confirm",
    )
    add("POST", "/venues/{code}/token", venue_pages.rotate_token, name="venue_token_rotate")
    add("GET", "/users", user_pages.get_users, name="users")
    add("POST", "/users", user_pages.create_user, name="user_create")
    add("POST", "/users/{username}", user_pages.update_user, name="user_update")
    add("POST", "/users/{username}/password", user_pages.set_password, name="user_password")
    # Signed event callbacks (webhooks), admins
    add("GET", "/webhooks", webhook_pages.get_webhooks, name="webhooks")
    add("POST", "/webhooks", webhook_pages.create_webhook, name="webhook_create")
    add("POST", "/webhooks/{id}/switch", webhook_pages.switch_webhook, name="webhook_switch")
    add("POST", "/webhooks/{id}/rotate", webhook_pages.rotate_webhook, name="webhook_rotate")
    add("POST", "/webhooks/{id}/delete", webhook_pages.delete_webhook, name="webhook_delete")
    add(
        "GET",
        "/webhooks/{id}/deliveries",
        webhook_pages.get_webhook_deliveries,
        name="webhook_deliveries",
    )
    add(
        "POST",
        "/webhooks/{id}/deliveries/{delivery}/replay",
        webhook_pages.replay_webhook_delivery,
        name="webhook_replay",
    )
    add("GET", "/tokens", token_pages.get_tokens, name="tokens")
    add("POST", "/tokens", token_pages.create_token, name="token_create")
    add("POST", "/tokens/{id}/revoke", token_pages.revoke_token, name="token_revoke")
    add("GET", "/sessions", session_pages.get_sessions, name="sessions")
    add("GET", "/sessions/new", session_pages.new_session, name="session_new")
    add("POST", "/sessions", session_pages.create_session, name="session_create")
    add("GET", "/sessions/{id}", session_pages.get_session, name="session")
    add("GET", "/sessions/{id}/edit", session_pages.edit_session, name="session_edit")
    add("POST", "/sessions/{id}/edit", session_pages.update_session, name="session_update")
    actions = "|".join(SESSION_ACTIONS)  # any other word is no address (404)
    add(
        "POST",
        f"/sessions/{{id}}/{{action:{actions}}}",
        session_pages.post_session_action,
        name="session_action",
    )
    add(
        "GET",
        "/sessions/{id}/attendance",
        attendance_pages.get_attendance,
        name="session_attendance",
    )
    add(
        "GET",
        "/sessions/{id}/recordings",
        recording_pages.get_recordings,
        name="session_recordings",
    )
    add(
        "GET",
        "/sessions/{id}/attendance.csv",
        attendance_pages.get_attendance_csv,
        name="session_attendance_csv",
    )
    add(
        "GET",
        "/sessions/{id}/attendance.xlsx",
        attendance_pages.get_attendance_xlsx,
        name="session_attendance_xlsx",
    )
    add("GET", "/sessions/{id}/console", console_pages.get_console, name="session_console")
    add("GET", "/sessions/{id}/live", console_pages.get_live, name="session_live")
    add("GET", "/reports/monthly", report_pages.get_monthly_report, name="report_monthly")
    add(
        "GET",
        "/reports/monthly.xlsx",
        report_pages.get_monthly_report_xlsx,
        name="report_monthly_xlsx",
    )
    add(
        "POST",
        "/reports/monthly/snapshots",
        report_pages.create_report_snapshot,
        name="report_snapshot_create",
    )
    # The ten-step class workflow (十步工作法) and its print templates
    klass = "/plans/{org}/{year}/classes/{code}"
    add("GET", klass, class_pages.get_class, name="class_workflow")
    add("POST", f"{klass}/steps/{{key}}", class_pages.mark_step, name="class_step_mark")
    add("GET", f"{klass}/print/{{template}}", class_pages.print_template, name="class_print")
    add("GET", f"{klass}/signin-sheet", class_pages.print_signin_sheet, name="class_signin_sheet")
    add("GET", "/workflow-steps", class_pages.get_workflow_steps, name="workflow_steps")
    add(
        "POST",
        "/workflow-steps",
        class_pages.update_workflow_steps,
        name="workflow_steps_update",
    )
    add("GET", "/plans", plan_pages.get_plans, name="plans")
    add("GET", "/plans/new", plan_pages.new_plan, name="plan_new")
    add("POST", "/plans", plan_pages.create_plan, name="plan_create")
    add("GET", "/plans/{org}/{year}", plan_pages.get_plan, name="plan")
    add("GET", "/plans/{org}/{year}/edit", plan_pages.edit_plan, name="plan_edit")
    add("POST", "/plans/{org}/{year}/edit", plan_pages.update_plan, name="plan_update")
    add("POST", "/plans/{org}/{year}/file", plan_pages.file_plan, name="plan_file")
    add(
        "POST",
        "/plans/{org}/{year}/{action:accept|return}",
        plan_pages.review_plan,
        name="plan_review",
    )
