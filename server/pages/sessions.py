"""Session pages: the list, scheduling and editing a session, its page and its workflow buttons."""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.access import allow
from server.auth.principal import Scope
from server.db.session import read_session, write_session
from server.domain.attendance import Policy
from server.domain.confirmations import (
    CONFIRM_LABELS,
    CONSEQUENCES,
    Confirmation,
    confirmation,
)
from server.domain.labels import SESSION_BUTTON_LABELS
from server.domain.sessions import SessionFields, next_state
from server.domain.vocabulary import (
    BROADCASTABLE_STATES,
    HELD_STATES,
    READERS,
    SESSION_ACTIONS,
    VENUE_READERS,
    WRITERS,
    editable,
)
from server.errors import Conflict, Forbidden, Invalid
from server.http.i18n import translate_for
from server.http.queries import query_page_number
from server.keys import DB_KEY, PRINCIPAL_KEY, RELAY_KEY, SETTINGS_KEY
from server.live.notify import schedule_changed
from server.pages.forms import FormProblem, problem_of, redirect_with_notice
from server.pages.render import render
from server.pages.session_form import (
    ORG_ROWS,
    Draft,
    Origin,
    SessionForm,
    field_problems,
    start_draft,
)
from server.services import (
    organizations,
    plan_links,
    rosters,
    session_views,
    sessions,
    venues,
    workflow,
)
from server.services.clock import utcnow

ROSTER_PER_PAGE = 100
NOT_EDITABLE = "Only a session that has not started can be edited."


class _FormRejected(Exception):
    """The form had problems; the draft holds them."""


@allow(*VENUE_READERS)
async def get_sessions(request: web.Request) -> web.Response:
    """GET /sessions: latest first."""
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        views = await session_views.list_sessions(session, principal.scope)
    now = utcnow()
    # As the page says: what is coming (or running) soonest first, then the rest latest first.
    coming = [view for view in views if view.state in BROADCASTABLE_STATES and view.ends_at > now]
    coming.sort(key=lambda view: view.starts_at)
    past = [view for view in views if view not in coming]
    return render(
        request,
        "sessions.html",
        {"coming": coming, "past": past, "may_plan": principal.role in WRITERS},
    )


async def _form_page(
    request: web.Request,
    form: SessionForm,
    *,
    editing: str | None = None,
    problem: FormProblem | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    async with read_session(request.app[DB_KEY]) as session:
        rooms = await venues.list_venues(session, principal.scope)
        tree = await organizations.list_tree(session, principal.scope, with_counts=False)
        this_year = utcnow().astimezone(request.app[SETTINGS_KEY].tz).year
        classes = await plan_links.class_options(session, principal.scope, form.year(this_year))
    return render(
        request,
        "session_form.html",
        {
            "form": form,
            "editing": editing,
            "venues": rooms,
            "tree": tree,
            "classes": classes,
            "org_rows": range(ORG_ROWS),
            "problem": problem,
            "bad": field_problems(problem),
            "timezone": request.app[SETTINGS_KEY].timezone,
        },
        status=problem.status if problem else 200,
    )


@allow(*WRITERS)
async def new_session(request: web.Request) -> web.Response:
    """GET /sessions/new[?replay_of=ID]: the form, with the attendance policy's defaults; with
    replay_of, a make-up session (补学) of that lesson, playing its recording."""
    replay_of = request.query.get("replay_of", "").strip()
    if not replay_of:
        return await _form_page(request, SessionForm.blank())
    async with read_session(request.app[DB_KEY]) as session:
        lesson = await session_views.get_session(session, request[PRINCIPAL_KEY].scope, replay_of)
    return await _form_page(request, SessionForm.makeup_of(lesson))


async def _checked_fields(
    session: AsyncSession, scope: Scope, form: SessionForm, draft: Draft
) -> SessionFields:
    """Draw the organizations' members, then check everything with the session rules."""
    for index, (org_code, venue) in enumerate(form.org_rows):
        if not (org_code and venue):
            continue
        try:
            drawn = await rosters.members_of_subtree(session, scope, org_code, venue)
        except Invalid as error:
            draft.problem(f"org_{index}", error.describe(draft.gettext))
            continue
        draft.add_drawn(Origin(f"org_{index}"), drawn)
    fields = draft.finish()
    if fields is None:
        raise _FormRejected
    return fields


@allow(*WRITERS)
async def create_session(request: web.Request) -> web.Response:
    """POST /sessions: schedule a session (a past window is allowed: a back-filled session)."""
    form = SessionForm.from_post(await request.post())
    principal = request[PRINCIPAL_KEY]
    draft = start_draft(form, request.app[SETTINGS_KEY].tz, translate_for(request))
    try:
        async with write_session(request.app[DB_KEY]) as session:
            fields = await _checked_fields(session, principal.scope, form, draft)
            view = await sessions.create_session(
                session, principal.scope, principal.actor, fields, principal.user_id
            )
    except _FormRejected:
        return await _form_page(request, form, problem=draft.form_problem())
    except (Invalid, Conflict) as error:
        return await _form_page(request, form, problem=problem_of(request, "session", error))
    await schedule_changed(request.app, view)
    redirect_with_notice(
        request, "session", "session_created", {"id": view.id}, roster=view.roster_size
    )


@allow(*WRITERS)
async def edit_session(request: web.Request) -> web.Response:
    """GET /sessions/{id}/edit: the form filled in from the stored session, while scheduled."""
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    async with read_session(request.app[DB_KEY]) as session:
        training = await session_views.load_visible(session, principal.scope, public_id)
        await sessions.check_owner(session, principal.scope, training)
        fields = await sessions.fields_of(session, training)
        rooms = await venues.list_venues(session, principal.scope)
    if not editable(training.state):
        return await _not_editable(request, public_id)
    form = SessionForm.of(fields, request.app[SETTINGS_KEY].tz, (room.code for room in rooms))
    return await _form_page(request, form, editing=public_id)


async def _not_editable(request: web.Request, public_id: str) -> web.Response:
    problem = problem_of(request, "action", Conflict(NOT_EDITABLE))
    return await _session_page(request, public_id, problem)


@allow(*WRITERS)
async def update_session(request: web.Request) -> web.Response:
    """POST /sessions/{id}/edit: replace the session's fields, venues and roster."""
    form = SessionForm.from_post(await request.post())
    principal = request[PRINCIPAL_KEY]
    public_id = request.match_info["id"]
    draft = start_draft(form, request.app[SETTINGS_KEY].tz, translate_for(request))
    try:
        async with write_session(request.app[DB_KEY]) as session:
            # Who may change the session, and whether it may still change, before the form.
            training = await session_views.load_visible(session, principal.scope, public_id)
            await sessions.check_owner(session, principal.scope, training)
            if not editable(training.state):
                raise Conflict(NOT_EDITABLE)
            fields = await _checked_fields(session, principal.scope, form, draft)
            view = await sessions.update_session(
                session, principal.scope, principal.actor, public_id, fields
            )
    except _FormRejected:
        return await _form_page(request, form, editing=public_id, problem=draft.form_problem())
    except Conflict:
        return await _not_editable(request, public_id)
    except Invalid as error:
        problem = problem_of(request, "session", error)
        return await _form_page(request, form, editing=public_id, problem=problem)
    await schedule_changed(request.app, view)
    redirect_with_notice(
        request, "session", "session_updated", {"id": view.id}, roster=view.roster_size
    )


async def _session_page(
    request: web.Request,
    public_id: str,
    problem: FormProblem | None = None,
    asked: Confirmation | None = None,
) -> web.Response:
    principal = request[PRINCIPAL_KEY]
    roster_page = query_page_number(request, "roster_page")
    async with read_session(request.app[DB_KEY]) as session:
        training = await session_views.load_visible(session, principal.scope, public_id)
        view = await session_views.view_of(session, principal.scope, training)
        owner = await sessions.is_owner(session, principal.scope, training)
        # The roster names members of every subtree taking part: only the organizer sees it,
        # and a venue's staff see their own venues' lines.
        venue_scope = principal.venue_scope
        roster = (
            await rosters.roster_page(session, training, roster_page, ROSTER_PER_PAGE, venue_scope)
            if owner or venue_scope is not None
            else None
        )
    role = principal.role
    actions = [
        (action, SESSION_BUTTON_LABELS[action])
        for action, roles in SESSION_ACTIONS.items()
        if owner and role in roles and next_state(action, view.state) is not None
    ]
    names = {venue.code: venue.name for venue in view.venues}
    return render(
        request,
        "session.html",
        {
            "session": view,
            "owner": owner,
            "policy": Policy.from_json(view.policy)[0],
            "roster": roster,
            "venue_scoped": principal.venue_scope is not None,
            "may_read_members": principal.role in READERS,
            "venue_names": names,
            "actions": actions,
            "may_edit": owner and role in WRITERS and editable(view.state),
            # One clear path to the broadcast: the organizer's operators go live from here.
            "may_broadcast": owner and role in WRITERS and view.state in BROADCASTABLE_STATES,
            "on_air": (await request.app[RELAY_KEY].status(public_id)).on,
            "has_attendance": view.state in HELD_STATES,
            "problem": problem,
            "asked": asked,
            "consequences": CONSEQUENCES,
            "confirm_labels": CONFIRM_LABELS,
        },
        status=problem.status if problem else 200,
    )


@allow(*VENUE_READERS)
async def get_session(request: web.Request) -> web.Response:
    """GET /sessions/{id}"""
    return await _session_page(request, request.match_info["id"])


@allow(*READERS)
async def post_session_action(request: web.Request) -> web.Response:
    """POST /sessions/{id}/{action}: start, end, finalize, approve or reopen, if the role may."""
    principal = request[PRINCIPAL_KEY]
    public_id, action = request.match_info["id"], request.match_info["action"]
    if principal.role not in SESSION_ACTIONS.get(action, ()):
        raise Forbidden("Your role may not do this.")
    if action in CONSEQUENCES and (await request.post()).get("confirmed") != "yes":
        async with read_session(request.app[DB_KEY]) as session:
            training = await session_views.load_visible(session, principal.scope, public_id)
        asked = confirmation(action, training.ends_at, utcnow())
        if asked is not None and next_state(action, training.state) is not None:
            return await _session_page(request, public_id, asked=asked)
    try:
        async with write_session(request.app[DB_KEY]) as session:
            view = await workflow.act(
                session,
                principal.scope,
                principal.actor,
                public_id,
                action,
                request.app[SETTINGS_KEY].tz,
            )
    except Conflict as error:
        return await _session_page(request, public_id, problem_of(request, "action", error))
    await schedule_changed(request.app, view)
    _after_action(request, public_id, action)


def _after_action(request: web.Request, public_id: str, action: str) -> NoReturn:
    route = "session_attendance" if action == "finalize" else "session"
    redirect_with_notice(request, route, f"session_{action}", {"id": public_id})
