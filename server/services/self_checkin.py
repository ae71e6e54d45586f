"""Self check-in by phone (扫码签到): a scanned room-screen code opens the form, the member's
number and second factor check them in or out through the same rules as a scanner's check-in
(source `self`), within limits per phone, member number, venue and address."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import AgentVenue
from server.db.bulk import bulk_insert
from server.db.models import (
    BroadcastSpan,
    CheckIn,
    Member,
    QuarantinedCheckIn,
    SessionVenue,
    StreamSample,
    TrainingSession,
    Venue,
)
from server.domain import checkin_codes, self_checkin
from server.domain.agent_payloads import CheckinBatch, CheckinEvent, SentCheckin
from server.domain.checkin_codes import CheckinCode, ScanPass
from server.errors import ApiError, Conflict, Forbidden, RateLimited
from server.live.rate_limits import RateLimits
from server.services import checkins
from server.services.wall import STREAM_STALE_AFTER

PHONE_COOKIE = "hetang_phone"  # the phone's long-lived random id, set by the phone page
# (what is counted, window in seconds, how many the window allows)
PHONE_TRIES = (600, 10)  # a phone: ten check-ins or outs in ten minutes
ADDRESS_TRIES = (600, 600)  # an address: a carrier's NAT may put a whole room behind one
VENUE_TRIES = (60, 300)  # a venue: a full room checking in within a minute
MEMBER_TRIES = (600, 10)  # a member number
# Wrong numbers or digits: a few, then the phone, the member number or the whole venue waits.
PHONE_FAILURES = (900, 5)
MEMBER_FAILURES = (900, 5)
VENUE_FAILURES = (900, 30)
DUMMY_HASH = self_checkin.hash_last4("0000", b"hetang-no-member")  # the same work when unknown

BAD_CODE = "This QR code is not valid. Scan the code on the room screen again."
EXPIRED_CODE = "This QR code has expired. Scan the code on the room screen again."
WRONG_MEMBER = "The member number or the last four digits of the ID number are not correct."
TOO_MANY = "Too many tries. Try again in {minutes} minutes or ask the venue's staff."
LOCKED = "Too many wrong tries. Try again in {minutes} minutes or ask the venue's staff."
BUSY = "Too many check-ins at this venue right now. Try again in a minute."
SHARED_PHONE = (
    "This phone has already checked in another member for this session: each member uses their"
    " own phone, or the venue's staff check them in."
)
OTHER_NETWORK = "Self check-in at this venue works only from its own network."
EXPIRED_FORM = "This page has expired. Scan the code on the room screen again."
# The scanner path's reasons for refusing, as the phone is told them.
REFUSAL_MESSAGES = MappingProxyType(
    {
        "outside_window": "This session does not take check-ins now.",
        "venue_not_in_session": BAD_CODE,
        "unknown_session": BAD_CODE,
    }
)


def pass_secret(secret_key: str) -> bytes:
    """The key scan passes are sealed with, derived from the server's secret."""
    return hashlib.sha256(f"hetang-selfcheckin-pass:{secret_key}".encode()).digest()


def phone_digest(phone_cookie: str) -> str:
    """How a phone is stored and counted: the digest of its random cookie."""
    return hashlib.sha256(phone_cookie.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Scanned:
    """A genuine, current code: where and for what, and the pass the phone's form carries."""

    venue_code: str
    venue_name: str
    session_id: str
    session_title: str
    scan_pass: ScanPass


async def _venue_and_session(
    session: AsyncSession, venue_code: str, session_id: str
) -> tuple[Venue, TrainingSession]:
    venue = await session.scalar(select(Venue).where(Venue.code == venue_code))
    training = await session.scalar(
        select(TrainingSession).where(TrainingSession.public_id == session_id)
    )
    if venue is None or training is None:
        raise Forbidden(BAD_CODE)
    joined = await session.scalar(
        select(SessionVenue.id).where(
            SessionVenue.session_id == training.id, SessionVenue.venue_id == venue.id
        )
    )
    if joined is None:
        raise Forbidden(BAD_CODE)
    return venue, training


async def scan(
    session: AsyncSession, code: CheckinCode | None, address: str, now: datetime
) -> Scanned:
    """Check a scanned code (its agent's signature, its window, the venue's networks)."""
    if code is None:
        raise Forbidden(BAD_CODE)
    venue, training = await _venue_and_session(session, code.venue_code, code.session_id)
    verdict = checkin_codes.check(checkin_codes.code_key(venue.token_digest), code, now.timestamp())
    if verdict is not None:
        raise Forbidden(EXPIRED_CODE if verdict == checkin_codes.EXPIRED else BAD_CODE)
    if not self_checkin.network_allows(venue.selfcheckin_networks, address):
        raise Forbidden(OTHER_NETWORK)
    return Scanned(
        venue.code,
        venue.name,
        training.public_id,
        training.title,
        ScanPass(venue.code, training.public_id, int(now.timestamp())),
    )


@dataclass(frozen=True)
class Attempt:
    """One press of 签到 / 签退 on the phone."""

    scan_pass: ScanPass
    phone: str  # phone_digest
    address: str
    member_no: str
    proof: str  # the second factor: the ID number's last four digits
    kind: str


@dataclass(frozen=True)
class SelfCheckin:
    """A stored self check-in."""

    event_id: str
    session_id: str
    venue_code: str
    member_no: str
    member_name: str
    kind: str
    at: datetime
    review_flags: str | None


async def _limit(limits: RateLimits, key: str, rule: tuple[int, int], message: str) -> None:
    window, allowed = rule
    if await limits.hit(key, window) > allowed:
        raise RateLimited(message, retry_after=window, minutes=max(1, window // 60))


async def _locked(limits: RateLimits, keys: tuple[tuple[str, tuple[int, int]], ...]) -> None:
    for key, (window, allowed) in keys:
        if await limits.count(key, window) >= allowed:
            raise RateLimited(LOCKED, retry_after=window, minutes=window // 60)


async def check_in(
    session: AsyncSession,
    limits: RateLimits,
    factor: self_checkin.SecondFactor,
    attempt: Attempt,
    now: datetime,
) -> SelfCheckin | ApiError:
    """Identify the member and store their check-in, or raise why not. A refusal that is kept
    for the reviewer (a second member from one phone, a check-in the scanner's rules refuse)
    comes back as the error to raise once it is stored (raising here would roll it back)."""
    venue_code, member_no = attempt.scan_pass.venue_code, attempt.member_no
    failures = (
        (f"sc:fail:phone:{attempt.phone}", PHONE_FAILURES),
        (f"sc:fail:member:{member_no}", MEMBER_FAILURES),
        (f"sc:fail:venue:{venue_code}", VENUE_FAILURES),
    )
    await _locked(limits, failures)
    await _limit(limits, f"sc:phone:{attempt.phone}", PHONE_TRIES, TOO_MANY)
    await _limit(limits, f"sc:addr:{attempt.address}", ADDRESS_TRIES, TOO_MANY)
    await _limit(limits, f"sc:venue:{venue_code}", VENUE_TRIES, BUSY)
    await _limit(limits, f"sc:member:{member_no}", MEMBER_TRIES, TOO_MANY)
    venue, training = await _venue_and_session(session, venue_code, attempt.scan_pass.session_id)
    member = await session.scalar(select(Member).where(Member.member_no == member_no))
    stored = member.id_last4_hash if member is not None else DUMMY_HASH
    right = await asyncio.to_thread(factor.verify, member_no, stored, attempt.proof)
    if member is None or not right:
        for key, (window, _) in failures:
            await limits.hit(key, window)
        raise Forbidden(WRONG_MEMBER)
    others = await _phone_members(session, training.id, attempt.phone, member.id)
    event_id = str(uuid.uuid4())
    if others:
        await _refuse_shared_phone(session, venue, training, attempt, event_id, others, now)
        return Conflict(SHARED_PHONE)
    stream_down = await _stream_down(session, venue.id, training, now)
    result = await _ingest(session, venue, training, member_no, attempt.kind, event_id, now)
    if result.status != "accepted":  # quarantined by the scanner's path: kept, and said why
        return Forbidden(REFUSAL_MESSAGES.get(result.reason or "", BAD_CODE))
    flags = self_checkin.review_flags(shared_phone=False, stream_down=stream_down)
    await session.execute(
        update(CheckIn)
        .where(CheckIn.event_id == event_id)
        .values(phone_digest=attempt.phone, review_flags=flags)
    )
    return SelfCheckin(
        event_id,
        training.public_id,
        venue.code,
        member.member_no,
        member.name,
        attempt.kind,
        now.replace(microsecond=0),
        flags,
    )


async def _ingest(
    session: AsyncSession,
    venue: Venue,
    training: TrainingSession,
    member_no: str,
    kind: str,
    event_id: str,
    now: datetime,
) -> checkins.CheckinResult:
    """Through the scanner's path: the same window, roster and approval rules."""
    at = now.replace(microsecond=0)
    event = CheckinEvent(event_id, training.public_id, member_no, None, kind, "self", at, at)
    payload = {"event_id": event_id, "session_id": training.public_id, "member_no": member_no}
    batch = CheckinBatch(now, (SentCheckin({**payload, "kind": kind}, event_id, event),))
    agent = AgentVenue(venue.id, venue.code, venue.name, venue.org_id)
    return (await checkins.ingest(session, agent, batch)).results[0]


async def _phone_members(
    session: AsyncSession, training_id: int, phone: str, member_id: int
) -> list[int]:
    """The check-ins of other members this phone made in the session."""
    found = await session.scalars(
        select(CheckIn.id).where(
            CheckIn.session_id == training_id,
            CheckIn.phone_digest == phone,
            CheckIn.member_id != member_id,
        )
    )
    return list(found)


async def _refuse_shared_phone(
    session: AsyncSession,
    venue: Venue,
    training: TrainingSession,
    attempt: Attempt,
    event_id: str,
    others: list[int],
    now: datetime,
) -> None:
    """Keep the refused try for the reviewer and flag the phone's earlier check-ins (a
    stream_down flag they had stays)."""
    flagged = await session.execute(
        select(CheckIn.id, CheckIn.review_flags).where(CheckIn.id.in_(others))
    )
    for checkin_id, stored in flagged.all():
        await session.execute(
            update(CheckIn)
            .where(CheckIn.id == checkin_id)
            .values(review_flags=self_checkin.with_flag(stored, self_checkin.SHARED_PHONE))
        )
    await bulk_insert(
        session,
        QuarantinedCheckIn,
        [
            {
                "event_id": event_id,
                "venue_id": venue.id,
                "session_ref": training.public_id,
                "reason": "phone_shared",
                "payload": {
                    "member_no": attempt.member_no,
                    "kind": attempt.kind,
                    "source": "self",
                    "phone_digest": attempt.phone,
                },
                "received_at": now,
            }
        ],
    )


async def _stream_down(
    session: AsyncSession, venue_id: int, training: TrainingSession, now: datetime
) -> bool:
    """Whether a branch venue's stream is down now: its fresh latest sample says down, or the
    broadcast is on air and the venue has stopped reporting (as the wall reads it)."""
    if venue_id == training.main_venue_id:
        return False  # the origin: up whenever on air
    latest = (
        await session.execute(
            select(StreamSample.state, StreamSample.at)
            .where(StreamSample.session_id == training.id, StreamSample.venue_id == venue_id)
            .order_by(StreamSample.at.desc())
            .limit(1)
        )
    ).first()
    if latest is not None and now - latest.at <= STREAM_STALE_AFTER:
        return bool(latest.state == "down")
    on_air = await session.scalar(
        select(BroadcastSpan.id)
        .where(BroadcastSpan.session_id == training.id, BroadcastSpan.ended_at.is_(None))
        .limit(1)
    )
    return on_air is not None
