"""The small organization tree most tests stand on, with a user and API token of every role in
two subtrees, and the secret key the test app signs with."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.principal import WHOLE_TREE
from server.db.session import write_session
from server.domain.organizations import OrgFields
from server.services import organizations, users
from tests.support.databases import Db

SECRET = "test-secret-key-" + "x" * 32
TREE = [
    OrgFields("city", "滁州市", "city", None),
    OrgFields("a", "凤阳县", "county", "city"),
    OrgFields("a1", "西泉镇党委", "committee", "a"),
    OrgFields("a1a", "西泉村党支部", "branch", "a1"),
    OrgFields("b", "天长市", "county", "city"),
    OrgFields("b1", "铜城镇党委", "committee", "b"),
]
ROLES = ("admin", "operator", "venue_staff", "reviewer")


@dataclass
class World:
    """A small tree: city › county A (committee A1 › branch A1a) and county B (committee B1)."""

    tokens: dict[str, str]  # "<role>@<subtree>" → hu_ token; subtree "a", "b" or "all"

    def auth(self, role: str, subtree: str = "a") -> dict[str, str]:
        """The Authorization header of that user."""
        return {"Authorization": f"Bearer {self.tokens[f'{role}@{subtree}']}"}


async def seed_world(db: Db) -> World:
    """The tree, and a token for every role in subtree a and b, plus a whole-tree admin."""
    found: dict[str, str] = {}
    async with write_session(db) as session:
        for fields in TREE:
            await organizations.create_org(session, WHOLE_TREE, "test", fields)
        await users.create_user(
            session,
            WHOLE_TREE,
            "test",
            username="root",
            display_name="Root",
            role="admin",
            org_code=None,
            password_hash=None,
        )
        found["admin@all"] = await users.create_api_token(session, WHOLE_TREE, "test", "root")
        for subtree in ("a", "b"):
            for role in ROLES:
                name = f"{role.replace('_', '-')}-{subtree}"
                await users.create_user(
                    session,
                    WHOLE_TREE,
                    "test",
                    username=name,
                    display_name=name,
                    role=role,
                    org_code=subtree,
                    password_hash=None,
                )
                found[f"{role}@{subtree}"] = await users.create_api_token(
                    session, WHOLE_TREE, "test", name
                )
    return World(found)
