"""User administration: accounts, roles, passwords and personal API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import LoginSession, Organization, User
from server.domain.api_tokens import DEFAULT_TOKEN_DAYS, parse_token_request
from server.domain.audit_chain import AuditFacts, changed_fields
from server.domain.vocabulary import ROLES
from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.services import api_tokens, audit
from server.services.clock import utcnow
from server.services.organizations import org_named_in

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{1,63}$")


@dataclass(frozen=True)
class UserView:
    """An account as administrators see it (never its password)."""

    username: str
    display_name: str
    role: str
    org_code: str | None
    org_name: str | None
    is_active: bool
    created_at: datetime


def normalize_username(raw: str) -> str:
    """Usernames are lower-case; reject anything unusual."""
    name = raw.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise Invalid(
            "A username is 2–64 lower-case letters, digits, '.', '_' or '-'.",
            fields={"username": "is not a valid username"},
        )
    return name


async def _org_for_user(
    session: AsyncSession, scope: Scope, role: str, org_code: str | None
) -> Organization | None:
    if role not in ROLES:
        raise Invalid(
            "Unknown role {role}.", role=role, fields={"role": "is not one of the allowed values"}
        )
    if org_code is None:
        if role != "admin":
            raise Invalid(
                "Only an administrator may have the whole tree; choose an organization.",
                fields={"org_code": "is required"},
            )
        if scope.path is not None:
            raise Forbidden("Only an administrator of the whole tree may grant the whole tree.")
        return None
    org = await org_named_in(session, scope, org_code)
    return org


def _snapshot(user: User, org: Organization | None) -> dict[str, str | bool | None]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "org_code": org.code if org else None,
        "is_active": user.is_active,
    }


async def create_user(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    *,
    username: str,
    display_name: str,
    role: str,
    org_code: str | None,
    password_hash: str | None,
) -> UserView:
    """Add an account in the scope; a whole-tree account only from the whole tree."""
    username = normalize_username(username)
    org = await _org_for_user(session, scope, role, org_code)
    taken = (
        await session.execute(
            select(User.id, Organization.path)
            .outerjoin(Organization, Organization.id == User.org_id)
            .where(User.username == username)
        )
    ).first()
    if taken is not None:
        # Unique across the city, so refused; but an account outside the scope (a whole-tree
        # one included) is never confirmed to exist.
        if scope.path is not None and not (taken[1] and scope.covers(taken[1])):
            raise Conflict("This username cannot be used.")
        raise Conflict("A user named {username} already exists.", username=username)
    now = utcnow()
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        org_id=org.id if org else None,
        password_hash=password_hash,
        is_active=True,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    await audit.append(
        session,
        [AuditFacts(now, actor, "user.create", "user", username, None, _snapshot(user, org))],
    )
    return _view(user, org)


async def _user_in_scope(
    session: AsyncSession, scope: Scope, username: str
) -> tuple[User, Organization | None]:
    row = (
        await session.execute(
            select(User, Organization)
            .outerjoin(Organization, User.org_id == Organization.id)
            .where(User.username == username.strip().lower())
        )
    ).first()
    if row is None:
        raise NotFound("No user named {username}.", username=username)
    user, org = row
    if scope.path is not None and (org is None or not scope.covers(org.path)):
        raise NotFound("No user named {username}.", username=username)
    return user, org


async def update_user(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    username: str,
    *,
    role: str,
    org_code: str | None,
    display_name: str,
    is_active: bool,
) -> UserView:
    """Change an account's role, organization, name or whether it may sign in."""
    user, org = await _user_in_scope(session, scope, username)
    if actor == f"user:{user.username}" and (not is_active or role != user.role):
        raise Conflict("You cannot change your own role or deactivate yourself.")
    new_org = await _org_for_user(session, scope, role, org_code)
    before = _snapshot(user, org)
    user.role, user.org_id = role, new_org.id if new_org else None
    user.display_name, user.is_active = display_name or user.username, is_active
    after = _snapshot(user, new_org)
    if before == after:
        return _view(user, new_org)
    if not is_active or before["role"] != role or before["org_code"] != after["org_code"]:
        await session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    await session.flush()
    old, new = changed_fields(before, after)
    await audit.append(
        session, [AuditFacts(utcnow(), actor, "user.update", "user", user.username, old, new)]
    )
    if not is_active:  # a blocked account's tokens stay dead when it is allowed in again
        await api_tokens.revoke_all(session, user, actor, "account blocked")
    return _view(user, new_org)


async def set_password(
    session: AsyncSession, scope: Scope, actor: str, username: str, password_hash: str
) -> None:
    """Replace a password; the user's browsers are signed out and their API tokens revoked."""
    user, _ = await _user_in_scope(session, scope, username)
    user.password_hash = password_hash
    await session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    await session.flush()
    await audit.append(
        session, [AuditFacts(utcnow(), actor, "user.password", "user", user.username, None, None)]
    )
    await api_tokens.revoke_all(session, user, actor, "password set")


async def create_api_token(
    session: AsyncSession,
    scope: Scope,
    actor: str,
    username: str,
    *,
    label: str = "",
    expires_days: int = DEFAULT_TOKEN_DAYS,
) -> str:
    """A new personal API token for a user in the scope, expiring after `expires_days` (1–365);
    returned once, stored as a digest."""
    request, problems = parse_token_request({"label": label, "expires_days": expires_days})
    if request is None or problems:
        raise Invalid("Some fields are missing or wrong.", fields=problems)
    user, _ = await _user_in_scope(session, scope, username)
    _, token = await api_tokens.issue(session, user, actor, request)
    return token


async def revoke_api_tokens(session: AsyncSession, scope: Scope, actor: str, username: str) -> int:
    """Revoke every live token of a user in the scope; return how many."""
    user, _ = await _user_in_scope(session, scope, username)
    return await api_tokens.revoke_all(session, user, actor, None)


async def list_users(session: AsyncSession, scope: Scope) -> list[UserView]:
    """Accounts in the scope (whole-tree accounts only for the whole tree)."""
    query = select(User, Organization).outerjoin(Organization, User.org_id == Organization.id)
    if scope.path is not None:
        query = query.where(scope.clause(Organization.path))
    rows = (await session.execute(query.order_by(User.username))).all()
    return [_view(user, org) for user, org in rows]


async def get_user(session: AsyncSession, scope: Scope, username: str) -> UserView:
    """One account in the scope."""
    return _view(*await _user_in_scope(session, scope, username))


async def count_users(session: AsyncSession) -> int:
    """How many accounts exist (the first account may be made without signing in)."""
    return len((await session.execute(select(User.id).limit(1))).all())


def _view(user: User, org: Organization | None) -> UserView:
    return UserView(
        user.username,
        user.display_name,
        user.role,
        org.code if org else None,
        org.name if org else None,
        user.is_active,
        user.created_at,
    )
