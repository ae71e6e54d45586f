"""The administration pages' URL map (server/routes.py holds the API's and the sign-in's): every
page is named and every handler declares who may see it."""

from __future__ import annotations

from aiohttp import web


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
