"""Venue use cases: create (the token is shown once), rotate the token, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import tokens
from server.auth.principal import Scope
from server.db.models import Organization, Venue
from server.domain.audit_chain import AuditFacts
from server.domain.self_checkin import parse_networks
from server.domain.venues import VenueFields
from server.errors import Conflict, Invalid, NotFound
from server.services import audit
from server.services.clock import utcnow
from server.services.organizations import org_named_in


@dataclass(frozen=True)
class VenueView:
    """A venue as callers see it (never its token)."""

    code: str
    name: str
    org_code: str
    org_name: str
    token_hint: str
    token_rotated_at: datetime
    agent_last_seen_at: datetime | None
    agent_state: str | None
    agent_version: str | None


async def create_venue(
    session: AsyncSession, scope: Scope, actor: str, fields: VenueFields
) -> tuple[VenueView, str]:
    """Add a venue to an organization in the scope; return it and its new token."""
    code, name, org_code = fields.code, fields.name, fields.org_code
    org = await org_named_in(session, scope, org_code)
    holder = await session.scalar(
        select(Organization.path)
        .join(Venue, Venue.org_id == Organization.id)
        .where(Venue.code == code)
    )
    if holder is not None:
        if not scope.covers(holder):
            # Unique across the city, so refused; never confirmed to another subtree.
            raise Conflict("This code cannot be used.")
        raise Conflict("A venue with code {code} already exists.", code=code)
    token = tokens.new_token(tokens.VENUE_TOKEN_PREFIX)
    now = utcnow()
    venue = Venue(
        code=code,
        name=name,
        org_id=org.id,
        token_digest=tokens.digest(token),
        token_hint=tokens.hint(token),
        token_rotated_at=now,
        created_at=now,
    )
    session.add(venue)
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                now,
                actor,
                "venue.create",
                "venue",
                code,
                None,
                {"code": code, "name": name, "org_code": org_code, "token_hint": venue.token_hint},
            )
        ],
    )
    return _view(venue, org), token


async def rotate_token(session: AsyncSession, scope: Scope, actor: str, code: str) -> str:
    """Give the venue a new token; the old one stops working at once."""
    venue, _ = await _venue_in_scope(session, scope, code)
    token = tokens.new_token(tokens.VENUE_TOKEN_PREFIX)
    before = venue.token_hint
    venue.token_digest = tokens.digest(token)
    venue.token_hint = tokens.hint(token)
    venue.token_rotated_at = utcnow()
    await session.flush()
    await audit.append(
        session,
        [
            AuditFacts(
                venue.token_rotated_at,
                actor,
                "venue.token_rotate",
                "venue",
                code,
                {"token_hint": before},
                {"token_hint": venue.token_hint},
            )
        ],
    )
    return token


async def selfcheckin_networks(session: AsyncSession, scope: Scope, code: str) -> str | None:
    """The networks phones may check in from at the venue (None: any)."""
    venue, _ = await _venue_in_scope(session, scope, code)
    return venue.selfcheckin_networks


async def set_selfcheckin_networks(
    session: AsyncSession, scope: Scope, actor: str, code: str, text: str | None
) -> str | None:
    """The networks phones may check in from at the venue (扫码签到), as a CIDR list; None or
    blank: any network. Answers the list as stored (networks written canonically); audited."""
    venue, _ = await _venue_in_scope(session, scope, code)
    try:
        networks = parse_networks(text)
    except ValueError:
        raise Invalid(
            "{text} is not a list of networks such as 10.20.0.0/16, 192.168.1.0/24.",
            text=text or "",
            fields={"networks": "is not a list of networks"},
        ) from None
    stored = ", ".join(str(network) for network in networks) or None
    before, venue.selfcheckin_networks = venue.selfcheckin_networks, stored
    if before != stored:
        await session.flush()
        await audit.append(
            session,
            [
                AuditFacts(
                    utcnow(),
                    actor,
                    "venue.selfcheckin_networks",
                    "venue",
                    code,
                    {"selfcheckin_networks": before},
                    {"selfcheckin_networks": stored},
                )
            ],
        )
    return stored


async def _venue_in_scope(
    session: AsyncSession, scope: Scope, code: str
) -> tuple[Venue, Organization]:
    row = (
        await session.execute(
            select(Venue, Organization)
            .join(Organization, Venue.org_id == Organization.id)
            .where(Venue.code == code)
        )
    ).first()
    if row is None or not scope.covers(row[1].path):
        raise NotFound("No venue with code {code}.", code=code)
    return row[0], row[1]


async def get_venue(session: AsyncSession, scope: Scope, code: str) -> VenueView:
    """One venue inside the scope."""
    return _view(*await _venue_in_scope(session, scope, code))


async def list_venues(session: AsyncSession, scope: Scope) -> list[VenueView]:
    """Every venue in the scope, by code."""
    rows = (
        await session.execute(
            select(Venue, Organization)
            .join(Organization, Venue.org_id == Organization.id)
            .where(scope.clause(Organization.path))
            .order_by(Venue.code)
        )
    ).all()
    return [_view(venue, org) for venue, org in rows]


def _view(venue: Venue, org: Organization) -> VenueView:
    return VenueView(
        venue.code,
        venue.name,
        org.code,
        org.name,
        venue.token_hint,
        venue.token_rotated_at,
        venue.agent_last_seen_at,
        venue.agent_state,
        venue.agent_version,
    )


async def count_venues(session: AsyncSession, scope: Scope) -> int:
    """How many venues belong to organizations inside the scope."""
    count = await session.scalar(
        select(func.count())
        .select_from(Venue)
        .join(Organization, Venue.org_id == Organization.id)
        .where(scope.clause(Organization.path))
    )
    return int(count or 0)
