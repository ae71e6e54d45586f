"""`hetang demo`: fill an empty database with a demo city shaped like 滁州市."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.passwords import PasswordService
from server.auth.principal import WHOLE_TREE
from server.db.models import (
    Member,
    Organization,
    User,
    Venue,
)
from server.db.session import lock_for_audit, read_session, write_session
from server.demo import data
from server.demo import history as demo_history
from server.demo import plans as demo_plans
from server.demo import sessions as demo_sessions
from server.demo import today as demo_today
from server.demo.sessions import DemoMember
from server.demo.today import TodaysSession
from server.demo.year import MONTHS_BACK, year_sessions
from server.domain.members import CSV_COLUMNS
from server.domain.organizations import OrgFields
from server.domain.venues import VenueFields
from server.services import organizations, users, venues
from server.services.clock import utcnow
from server.services.member_import import import_members_csv

SEED = 20240601
SERVER_URL = "http://127.0.0.1:8080"


class DemoRefused(Exception):
    """The database is not empty."""


async def seed_demo(
    factory: async_sessionmaker[AsyncSession],
    progress: Callable[[str], None],
    history_months: int = MONTHS_BACK,
    server_url: str = SERVER_URL,
) -> list[str]:
    """Fill an empty database with a demo city and `history_months` months of its training
    (the stream readings of a year take most of the time); return the lines that name the
    demo logins."""
    started = time.monotonic()
    rng = random.Random(SEED)
    async with read_session(factory) as session:
        await _refuse_unless_empty(session)
    # argon2 is slow on purpose and releases the GIL: hash beside the first writes.
    hashing = asyncio.ensure_future(asyncio.to_thread(_hash_passwords))
    try:
        async with write_session(factory) as session:
            # Checked again under the writer lock: another writer may have come in meanwhile.
            await lock_for_audit(session)
            await _refuse_unless_empty(session)
            org_paths = await _create_orgs(session, rng, progress)
            members = await _create_members(session, rng, org_paths, progress)
            venue_ids = await _create_venues(session, progress)
            operator_id = await _create_users(session, await hashing, progress)
            now, zone = utcnow(), ZoneInfo(data.TIMEZONE)
            year = now.astimezone(zone).year
            classes = await demo_plans.create_plans(session, year, now, data.ACTOR, progress)
            # A year of the city's monthly classes, then this season's runs of its plans' classes.
            specs = [*year_sessions(now.astimezone(zone).date(), history_months), *data.SESSIONS]
            rostered = await demo_sessions.create_sessions(
                session, rng, now, org_paths, members, venue_ids, operator_id, classes, specs
            )
            progress(f"sessions: {len(specs)} with {rostered} roster entries")
            await demo_history.play_past_sessions(
                session, rng, zone, now, data.ACTOR, progress, data.SESSIONS[0].title
            )
            today = await demo_today.schedule_today(session, rng, now)
    finally:
        await asyncio.gather(hashing, return_exceptions=True)
    progress(f"demo city ready in {time.monotonic() - started:.1f} s")
    return [
        *_login_lines(len(org_paths), len(members), len(venue_ids), server_url),
        today_line(today, server_url),
    ]


async def _refuse_unless_empty(session: AsyncSession) -> None:
    counts: dict[str, int] = {}
    for label, model in (
        ("organizations", Organization),
        ("members", Member),
        ("users", User),
        ("venues", Venue),
    ):
        counts[label] = await session.scalar(select(func.count()).select_from(model)) or 0
    if any(counts.values()):
        found = ", ".join(f"{count} {label}" for label, count in counts.items() if count)
        raise DemoRefused(
            f"the database already has data ({found}); "
            "the demo city is only added to an empty database"
        )


def _hash_passwords() -> dict[str, str]:
    """Each demo password hashed once (argon2 is slow on purpose)."""
    service = PasswordService()
    return {login.username: service.hash_sync(login.password) for login in data.LOGINS}


async def _create_orgs(
    session: AsyncSession, rng: random.Random, progress: Callable[[str], None]
) -> dict[str, str]:
    """The whole tree through the organizations service; return code → materialized path."""
    paths: dict[str, str] = {}

    async def add(code: str, name: str, level: str, parent: str | None) -> None:
        view = await organizations.create_org(
            session, WHOLE_TREE, data.ACTOR, OrgFields(code, name, level, parent)
        )
        paths[code] = view.path

    await add(data.CITY_CODE, data.CITY_NAME, "city", None)
    places: list[tuple[str, tuple[data.CommitteeSpec, ...]]] = [
        (data.CITY_CODE, data.CITY_COMMITTEES)
    ]
    for county in data.COUNTIES:
        county_code = f"{data.CITY_CODE}-{county.suffix}"
        await add(county_code, county.name, "county", data.CITY_CODE)
        places.append((county_code, county.committees))
    committees = branches = 0
    for parent, specs in places:
        used: set[str] = set()
        for index, spec in enumerate(specs):
            code = f"{parent}-{spec.suffix}"
            await add(code, spec.name, "committee", parent)
            committees += 1
            for number, name in enumerate(_branch_names(rng, spec, index, used), start=1):
                await add(f"{code}-{number:02d}", name, "branch", code)
                branches += 1
    progress(
        f"organizations: 1 city, {len(data.COUNTIES)} counties, "
        f"{committees} committees, {branches} branches"
    )
    return paths


def _branch_names(
    rng: random.Random, spec: data.CommitteeSpec, index: int, used: set[str]
) -> list[str]:
    """Branch names of a committee: named ones, or villages and a community for a town."""
    if spec.kind in ("organ", "enterprise"):
        return list(spec.names[: data.BRANCHES_PER_COMMITTEE])
    if spec.kind == "street":
        picked = _pick(rng, data.COMMUNITY_NAMES, data.BRANCHES_PER_COMMITTEE, used)
        return [f"{name}社区党支部" for name in picked]
    town = spec.name.removesuffix("党委")
    villages = list(spec.names)
    used.update(villages)
    villages += _pick(rng, _village_names(), data.BRANCHES_PER_COMMITTEE - 1 - len(villages), used)
    # Towns alternate between a branch of the town offices and one of a town community.
    last = f"{town}{rng.choice(data.COMMUNITY_NAMES)}社区" if index % 2 == 0 else f"{town}机关"
    return [f"{village}村党支部" for village in villages] + [f"{last}党支部"]


def _village_names() -> tuple[str, ...]:
    """Every prefix-suffix village name."""
    return tuple(p + s for p in data.VILLAGE_PREFIXES for s in data.VILLAGE_SUFFIXES)


def _pick(rng: random.Random, names: Sequence[str], count: int, used: set[str]) -> list[str]:
    """`count` names not used yet in this county; they are then used."""
    picked = rng.sample([name for name in names if name not in used], count)
    used.update(picked)
    return picked


async def _create_members(
    session: AsyncSession,
    rng: random.Random,
    org_paths: dict[str, str],
    progress: Callable[[str], None],
) -> list[DemoMember]:
    """Every demo member through the CSV import service (one audit entry each)."""
    branches = (
        await session.scalars(
            select(Organization.code)
            .where(Organization.level == "branch")
            .order_by(Organization.id)
        )
    ).all()
    sizes = _spread(rng, data.TOTAL_MEMBERS, len(branches), 15, 35)
    cards = iter(rng.sample(range(10_000_000, 100_000_000), data.TOTAL_MEMBERS))
    admin_codes = {f"{data.CITY_CODE}-{c.suffix}": c.admin_code for c in data.COUNTIES}
    serials: dict[str, int] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for code, size in zip(branches, sizes, strict=True):
        prefix = admin_codes.get("-".join(code.split("-")[:2]), data.CITY_ADMIN_CODE)
        leaders = rng.randint(2, 4)
        for position in range(size):
            serials[prefix] = serials.get(prefix, 0) + 1
            category = (
                "secretary" if position == 0 else "committee" if position <= leaders else "ordinary"
            )
            card = next(cards)
            writer.writerow(
                (
                    f"{prefix}{serials[prefix]:04d}",
                    _person_name(rng),
                    code,
                    category,
                    f"CZ{card}" if rng.random() < data.CARD_SHARE else "",
                )
            )
    await import_members_csv(session, WHOLE_TREE, data.ACTOR, buffer.getvalue().encode("utf-8"))
    rows = (
        await session.execute(
            select(Member.id, Member.member_no, Member.category, Organization.path)
            .join(Organization, Member.org_id == Organization.id)
            .order_by(Member.member_no)
        )
    ).all()
    members = [DemoMember(*row) for row in rows]
    progress(f"members: {len(members)}")
    return members


def _spread(rng: random.Random, total: int, buckets: int, low: int, high: int) -> list[int]:
    """`buckets` random sizes within [low, high] that add up to `total`."""
    sizes = [rng.randint(low, high) for _ in range(buckets)]
    while (difference := total - sum(sizes)) != 0:
        step = 1 if difference > 0 else -1
        index = rng.randrange(buckets)
        if low <= sizes[index] + step <= high:
            sizes[index] += step
    return sizes


def _person_name(rng: random.Random) -> str:
    """A plausible Chinese name: a common surname and one or two given characters."""
    given = rng.choices(data.GIVEN_CHARS, k=2 if rng.random() < 0.7 else 1)
    return rng.choice(data.SURNAMES) + "".join(given)


async def _create_venues(session: AsyncSession, progress: Callable[[str], None]) -> dict[str, int]:
    """Every demo venue through the venues service; return code → id."""
    for spec in data.VENUES:
        await venues.create_venue(
            session, WHOLE_TREE, data.ACTOR, VenueFields(spec.code, spec.name, spec.org_code)
        )
    rows = await session.execute(select(Venue.code, Venue.id))
    found = {code: venue_id for code, venue_id in rows}
    progress(f"venues: {len(found)} (their agent tokens are not shown; rotate one to use it)")
    return found


async def _create_users(
    session: AsyncSession, hashes: dict[str, str], progress: Callable[[str], None]
) -> int:
    """One account per role through the users service; return the operator's id."""
    for login in data.LOGINS:
        await users.create_user(
            session,
            WHOLE_TREE,
            data.ACTOR,
            username=login.username,
            display_name=login.display_name,
            role=login.role,
            org_code=login.org_code,
            password_hash=hashes[login.username],
        )
    progress(f"users: {len(data.LOGINS)}, one per role")
    operator = next(login.username for login in data.LOGINS if login.role == "operator")
    return (await session.execute(select(User.id).where(User.username == operator))).scalar_one()


def _login_lines(org_count: int, member_count: int, venue_count: int, server_url: str) -> list[str]:
    """What `hetang demo` prints at the end: the logins and where to open the server."""
    return [
        f"demo city {data.CITY_NAME}: {org_count} organizations, {member_count} members, "
        f"{venue_count} venues, a year of training sessions",
        *demo_logins(server_url),
    ]


def demo_logins(server_url: str = SERVER_URL) -> list[str]:
    """Where to open the server and the demo accounts to sign in with."""
    lines = [f"open {server_url} (after `hetang serve`) and sign in as:"]
    names = {data.CITY_CODE: data.CITY_NAME}
    names.update((f"{data.CITY_CODE}-{county.suffix}", county.name) for county in data.COUNTIES)
    for login in data.LOGINS:
        scope = f"{names[login.org_code]} ({login.org_code})" if login.org_code else "whole tree"
        lines.append(
            f"  {login.username:<10} password {login.password:<16} "
            f"role {login.role:<12} scope {scope}"
        )
    return lines


def today_line(today: TodaysSession, server_url: str = SERVER_URL) -> str:
    """Where to try check-in and broadcast at once."""
    local = today.starts_at.astimezone(ZoneInfo(data.TIMEZONE)).strftime("%H:%M")
    return (
        f"today's session starts at {local} ({data.TIMEZONE}): {today.title}; "
        f"operator console {server_url}/sessions/{today.public_id}/console"
    )
