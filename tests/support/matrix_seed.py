"""What the authorization matrix stands on, in each subtree: a member, a venue, a spare user, a
session (more made in any state on demand), a class of the ten-step workflow and a plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from server.auth import tokens
from server.auth.principal import WHOLE_TREE
from server.db.models import ApiToken, User
from server.db.session import write_session
from server.domain.members import MemberFields
from server.domain.sessions import parse_session
from server.domain.venues import VenueFields
from server.services import members, sessions, users, venues, workflow
from tests.support.databases import Db
from tests.support.plan_rows import add_class, seed_plans

TZ = ZoneInfo("Asia/Shanghai")
# A fixed window in the past: back-filled sessions are allowed, and nothing depends on today.
SESSION_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
# The actions that bring a new session into each state.
ACTIONS_TO = {
    "scheduled": (),
    "live": ("start",),
    "ended": ("start", "end"),
    "finalized": ("start", "end", "finalize"),
    "approved": ("start", "end", "finalize", "approve"),
}


def session_at(venue: str, fresh: str) -> dict[str, Any]:
    """A new session (API body) at a main venue, titled S-<fresh>, with M-A-1 on its roster."""
    return {
        "title": f"S-{fresh}",
        "topic_code": "T-1",
        "starts_at": SESSION_START.isoformat(),
        "ends_at": (SESSION_START + timedelta(hours=2)).isoformat(),
        "credit_hours": 2,
        "main_venue": venue,
        "roster": [{"member_no": "M-A-1", "venue": venue}],
    }


async def make_session(
    db: Db,
    state: str = "scheduled",
    *,
    subtree: str = "a",
    branch: str | None = None,
    plan_class: str | None = None,
) -> str:
    """A session owned by the subtree (its venue and member on the roster), driven into `state`
    through the workflow, as the first engineer to use it would; returns its id."""
    venue, member, title = {
        "a": ("VEN-A", "M-A-1", "甲区培训班"),
        "b": ("VEN-B", "M-B-1", "乙区培训班"),
    }[subtree]
    raw = {
        **session_at(venue, ""),
        "title": title,
        "roster": [{"member_no": member, "venue": venue}],
        "plan_class": plan_class,
    }
    if branch is not None:
        other = {"VEN-A": "M-A-1", "VEN-B": "M-B-1"}[branch]
        raw["branch_venues"] = [branch]
        raw["roster"].append({"member_no": other, "venue": branch})
    fields, problems = parse_session(raw)
    assert fields is not None and not problems, problems
    async with write_session(db) as session:
        view = await sessions.create_session(session, WHOLE_TREE, "test", fields)
        for action in ACTIONS_TO[state]:
            await workflow.act(session, WHOLE_TREE, "test", view.id, action, TZ)
    return view.id


# Ids of the tokens the matrix revokes: far above any the database hands out, so that a page
# answer about one holds its id nowhere else (the matrix compares it with an unknown id's).
MATRIX_TOKEN_IDS = 1_900_000_000


async def make_token(db: Db, username: str, serial: int) -> str:
    """A fresh API token of the user, labelled "matrix", with an id of its own; returns the id."""
    raw = tokens.new_token(tokens.USER_TOKEN_PREFIX)
    now = datetime.now(UTC)
    async with write_session(db) as session:
        user_id = await session.scalar(select(User.id).where(User.username == username))
        assert user_id is not None, username
        session.add(
            ApiToken(
                id=MATRIX_TOKEN_IDS + serial,
                user_id=user_id,
                digest=tokens.digest(raw),
                hint=tokens.hint(raw),
                label="matrix",
                created_at=now,
                expires_at=now + timedelta(days=90),
            )
        )
    return str(MATRIX_TOKEN_IDS + serial)


MATRIX_YEAR = 2025  # apart from the plans the plan rows of the matrix make (2026)


async def seed_matrix_classes(db: Db) -> None:
    """For the authorization matrix: a 2025 plan with class C01 of a1 and of b1."""
    for org_code, title in (("a1", "甲区工作法班"), ("b1", "乙区工作法班")):
        await add_class(db, org_code, MATRIX_YEAR, "C01", title)


async def seed_matrix(db: Db) -> None:
    """One member, one venue, one spare user and one session in each subtree, a 2025 class and a
    2026 draft plan of a1 and of b1."""
    async with write_session(db) as session:
        for subtree, no, name, venue, venue_name, org in (
            ("a", "M-A-1", "甲党员", "VEN-A", "西泉会场", "a1a"),
            ("b", "M-B-1", "乙党员", "VEN-B", "铜城会场", "b1"),
        ):
            await members.create_member(
                session, WHOLE_TREE, "test", MemberFields(no, name, org, "ordinary", None)
            )
            await venues.create_venue(
                session, WHOLE_TREE, "test", VenueFields(venue, venue_name, f"{subtree}1")
            )
            await users.create_user(
                session,
                WHOLE_TREE,
                "test",
                username=f"spare-{subtree}",
                display_name=f"spare-{subtree}",
                role="operator",
                org_code=f"{subtree}1",
                password_hash=None,
            )
    for subtree in ("a", "b"):
        await make_session(db, subtree=subtree)
    await seed_matrix_classes(db)
    await seed_plans(db)
