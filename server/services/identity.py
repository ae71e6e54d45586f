"""Looking up who presents a cookie or a token, and managing login sessions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import tokens
from server.auth.principal import WHOLE_TREE, AgentVenue, Principal, Scope
from server.db.models import ApiToken, LoginSession, Organization, User, Venue

TOKEN_TOUCH_INTERVAL = timedelta(hours=1)


async def _principal(session: AsyncSession, user: User, via: str) -> Principal:
    if user.org_id is None:
        return Principal(
            user.id, user.username, user.display_name, user.role, None, None, WHOLE_TREE, via
        )
    org = await session.get_one(Organization, user.org_id)
    return Principal(
        user.id,
        user.username,
        user.display_name,
        user.role,
        org.code,
        org.name,
        Scope(org.path),
        via,
    )


async def principal_for_login(
    session: AsyncSession, raw_token: str, now: datetime
) -> Principal | None:
    """The user of an unexpired login session, or None."""
    row = (
        await session.execute(
            select(User, LoginSession.expires_at)
            .join(LoginSession, LoginSession.user_id == User.id)
            .where(LoginSession.digest == tokens.digest(raw_token))
        )
    ).first()
    if row is None or row[1] <= now or not row[0].is_active:
        return None
    return await _principal(session, row[0], "cookie")


async def principal_for_api_token(
    session: AsyncSession, raw_token: str, now: datetime
) -> tuple[Principal, bool] | None:
    """The user of a live personal API token (neither revoked nor expired), and whether its
    last use should be recorded."""
    row = (
        await session.execute(
            select(User, ApiToken)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.digest == tokens.digest(raw_token))
        )
    ).first()
    if row is None:
        return None
    user, token = row
    if token.revoked_at is not None or token.expires_at <= now or not user.is_active:
        return None
    if not tokens.digests_match(token.digest, raw_token):
        return None
    stale = token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL
    principal = await _principal(session, user, "token")
    return replace(principal, token_expires_at=token.expires_at), stale


async def touch_api_token(session: AsyncSession, raw_token: str, now: datetime) -> None:
    """Record when a token was last used (at most once an hour)."""
    await session.execute(
        update(ApiToken).where(ApiToken.digest == tokens.digest(raw_token)).values(last_used_at=now)
    )


async def venue_for_token(session: AsyncSession, raw_token: str) -> AgentVenue | None:
    """The venue whose current token this is, or None."""
    venue = (
        await session.execute(select(Venue).where(Venue.token_digest == tokens.digest(raw_token)))
    ).scalar_one_or_none()
    if venue is None or not tokens.digests_match(venue.token_digest, raw_token):
        return None
    return AgentVenue(venue.id, venue.code, venue.name, venue.org_id)


async def open_login_session(
    session: AsyncSession, user_id: int, now: datetime, lifetime_s: int
) -> str:
    """Start a fresh login session (never reusing an old one) and return the cookie value."""
    raw = tokens.new_token("")
    session.add(
        LoginSession(
            digest=tokens.digest(raw),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime_s),
        )
    )
    await session.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    return raw


async def close_login_session(session: AsyncSession, raw_token: str) -> None:
    """Sign out: the cookie stops working at once."""
    await session.execute(
        delete(LoginSession).where(LoginSession.digest == tokens.digest(raw_token))
    )


async def user_for_login(session: AsyncSession, username: str) -> User | None:
    """The active user with this name (case-insensitive), or None."""
    user = (
        await session.execute(select(User).where(User.username == username.strip().lower()))
    ).scalar_one_or_none()
    return user if user is not None and user.is_active else None
