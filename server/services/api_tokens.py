"""Personal API tokens: issuing one (shown once, stored as a digest), listing, revoking one, and
revoking every token of a user (a new password, a blocked account). Each change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import tokens
from server.auth.principal import Scope
from server.db.models import ApiToken, Organization, User
from server.db.session import lock_for_audit
from server.domain.api_tokens import TokenRequest, expiry, token_id_of, token_state
from server.domain.audit_chain import AuditFacts
from server.errors import NotFound
from server.services import audit
from server.services.clock import utcnow

# One answer for a token that does not exist and one the caller may not touch.
NO_SUCH_TOKEN = "No such API token."  # noqa: S105  (a message)


@dataclass(frozen=True)
class TokenView:
    """A token as its owner and administrators see it (never the token, never its digest)."""

    id: int
    username: str
    label: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """active, expired or revoked."""
        return token_state(self.expires_at, self.revoked_at, now)


def _view(token: ApiToken, username: str) -> TokenView:
    return TokenView(
        token.id,
        username,
        token.label,
        token.hint,
        token.created_at,
        token.last_used_at,
        token.expires_at,
        token.revoked_at,
    )


async def issue(
    session: AsyncSession,
    user: User,
    actor: str,
    request: TokenRequest,
    *,
    not_after: datetime | None = None,
) -> tuple[TokenView, str]:
    """A new token for the user, expiring as asked (never after `not_after`); the token itself
    is returned this once."""
    raw = tokens.new_token(tokens.USER_TOKEN_PREFIX)
    now = utcnow()
    row = ApiToken(
        user_id=user.id,
        digest=tokens.digest(raw),
        hint=tokens.hint(raw),
        label=request.label,
        created_at=now,
        expires_at=expiry(now, request.expires_days, not_after),
    )
    session.add(row)
    await session.flush()
    after = {"token_hint": row.hint, "label": row.label, "expires_at": row.expires_at.isoformat()}
    await audit.append(
        session, [AuditFacts(now, actor, "token.create", "user", user.username, None, after)]
    )
    return _view(row, user.username), raw


async def issue_own(
    session: AsyncSession,
    user_id: int,
    actor: str,
    request: TokenRequest,
    *,
    not_after: datetime | None = None,
) -> tuple[TokenView, str]:
    """A new token for the caller themselves."""
    user = await session.get_one(User, user_id)
    return await issue(session, user, actor, request, not_after=not_after)


async def list_own(session: AsyncSession, user_id: int) -> list[TokenView]:
    """The caller's tokens, newest first, revoked and expired ones included."""
    rows = (
        await session.execute(
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.user_id == user_id)
            .order_by(ApiToken.id.desc())
        )
    ).all()
    return [_view(token, username) for token, username in rows]


def _covers(scope: Scope, org: Organization | None) -> bool:
    """A whole-tree account lies only in the whole tree."""
    return scope.path is None or (org is not None and scope.covers(org.path))


async def list_of_user(session: AsyncSession, scope: Scope, username: str) -> list[TokenView]:
    """The tokens of a user in the scope, newest first (404 for a user outside it)."""
    row = (
        await session.execute(
            select(User, Organization)
            .outerjoin(Organization, Organization.id == User.org_id)
            .where(User.username == username.strip().lower())
        )
    ).first()
    if row is None or not _covers(scope, row[1]):
        raise NotFound("No user named {username}.", username=username)
    return await list_own(session, row[0].id)


async def revoke(
    session: AsyncSession,
    actor: str,
    token_ref: str,
    *,
    own_user_id: int | None,
    admin_scope: Scope | None,
) -> TokenView:
    """Revoke the token with this id: the caller's own (`own_user_id`), or, for an
    administrator (`admin_scope`), one of a user in their subtree. Any other token answers as
    one that does not exist. Revoking a revoked token changes nothing."""
    token_id = token_id_of(token_ref)
    if token_id is None:
        raise NotFound(NO_SUCH_TOKEN)
    await lock_for_audit(session)  # read and revoked by one writer at a time: one audit entry
    row = (
        await session.execute(
            select(ApiToken, User, Organization)
            .join(User, User.id == ApiToken.user_id)
            .outerjoin(Organization, Organization.id == User.org_id)
            .where(ApiToken.id == token_id)
        )
    ).first()
    if row is None:
        raise NotFound(NO_SUCH_TOKEN)
    token, user, org = row
    own = own_user_id is not None and token.user_id == own_user_id
    if not own and (admin_scope is None or not _covers(admin_scope, org)):
        raise NotFound(NO_SUCH_TOKEN)
    if token.revoked_at is None:
        now = utcnow()
        token.revoked_at = now
        await session.flush()
        before = {"tokens": [token.hint]}
        await audit.append(
            session, [AuditFacts(now, actor, "token.revoke", "user", user.username, before, None)]
        )
    return _view(token, user.username)


async def revoke_all(session: AsyncSession, user: User, actor: str, note: str | None) -> int:
    """Revoke every live token of the user (why, in `note`); return how many."""
    await lock_for_audit(session)
    live = (
        (
            await session.execute(
                select(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .order_by(ApiToken.id)
            )
        )
        .scalars()
        .all()
    )
    if not live:
        return 0
    now = utcnow()
    for token in live:
        token.revoked_at = now
    await session.flush()
    before = {"tokens": [token.hint for token in live]}
    await audit.append(
        session,
        [AuditFacts(now, actor, "token.revoke", "user", user.username, before, None, note)],
    )
    return len(live)
