"""What a reviewer checks of a session's self check-ins by phone (扫码签到): the check-ins flagged
for review (one phone for several members, the venue's stream down at that moment) and the
second members a phone was refused for. Only members of the reviewer's subtree, at the venues
the reviewer's result shows."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Scope
from server.db.models import CheckIn, Member, Organization, QuarantinedCheckIn, Venue
from server.domain.self_checkin import SHARED_PHONE
from server.services.session_views import load_visible

REFUSED = "refused_second_member"  # a phone's try for a second member, refused and kept


@dataclass(frozen=True)
class ReviewLine:
    """One self check-in (or refused try) a reviewer should look at."""

    at: datetime
    member_no: str
    name: str | None
    venue: str
    kind: str
    flags: tuple[str, ...]


async def review_lines(
    session: AsyncSession, scope: Scope, public_id: str, venues: Collection[str]
) -> list[ReviewLine]:
    """The session's flagged self check-ins and refused second members, oldest first."""
    training_id = (await load_visible(session, scope, public_id)).id
    flagged = await session.execute(
        select(
            CheckIn.at,
            Member.member_no,
            Member.name,
            Venue.code,
            CheckIn.kind,
            CheckIn.review_flags,
            Organization.path,
        )
        .join(Member, Member.id == CheckIn.member_id)
        .join(Organization, Organization.id == Member.org_id)
        .join(Venue, Venue.id == CheckIn.venue_id)
        .where(
            CheckIn.session_id == training_id,
            CheckIn.source == "self",
            CheckIn.review_flags.is_not(None),
        )
    )
    lines = [
        ReviewLine(at, number, name, venue, kind, tuple((flags or "").split(",")))
        for at, number, name, venue, kind, flags, path in flagged.all()
        if venue in venues and scope.covers(path)
    ]
    lines += await _refused(session, scope, public_id, venues)
    return sorted(lines, key=lambda line: (line.at, line.member_no))


async def _refused(
    session: AsyncSession, scope: Scope, public_id: str, venues: Collection[str]
) -> list[ReviewLine]:
    kept = await session.execute(
        select(QuarantinedCheckIn.received_at, QuarantinedCheckIn.payload, Venue.code)
        .join(Venue, Venue.id == QuarantinedCheckIn.venue_id)
        .where(
            QuarantinedCheckIn.session_ref == public_id,
            QuarantinedCheckIn.reason == "phone_shared",
        )
    )
    tries = [(at, payload, venue) for at, payload, venue in kept.all() if venue in venues]
    numbers = {str(payload.get("member_no")) for _, payload, _ in tries}
    members = {
        number: (name, path)
        for number, name, path in await session.execute(
            select(Member.member_no, Member.name, Organization.path)
            .join(Organization, Organization.id == Member.org_id)
            .where(Member.member_no.in_(numbers))
        )
    }
    return [
        ReviewLine(
            at,
            number,
            members[number][0],
            venue,
            str(payload.get("kind") or "in"),
            (REFUSED, SHARED_PHONE),
        )
        for at, payload, venue in tries
        for number in [str(payload.get("member_no"))]
        if number in members and scope.covers(members[number][1])
    ]
