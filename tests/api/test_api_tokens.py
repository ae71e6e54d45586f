"""Personal API tokens (hu_…) expire, can be listed and revoked — by API, page and CLI — and
every one of a user's tokens is revoked when their password is set or their account blocked
(security review, issue 11, finding 7)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text, update

from server.auth import tokens
from server.auth.principal import WHOLE_TREE
from server.db.base import Base
from server.db.migrate import downgrade, upgrade
from server.db.models import ApiToken, AuditEntry, User
from server.db.session import make_engine, read_session, write_session
from server.services import users
from server.settings import Settings
from tests.support.browser import Browser, give_password
from tests.support.client import Client
from tests.support.databases import Db
from tests.support.openapi_check import check, load_spec
from tests.support.procs import BIN, clean_env, hetang
from tests.support.world import SECRET, World

DAY = timedelta(days=1)
UNAUTHORIZED = {"code": "unauthorized"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of(client: Client, token: str) -> int:
    """What GET /api/v1/me answers to this token (401 in the documented shape, or 200)."""
    answer = await client.get("/api/v1/me", headers=bearer(token))
    if answer.status == 401:
        body = await answer.json()
        assert set(body) == {"error"} and body["error"]["code"] == "unauthorized", body
        assert body["error"]["message"], body
    return answer.status


async def row_of(db: Db, token: str) -> ApiToken:
    """The stored row of a token (found by its digest)."""
    async with read_session(db) as session:
        return (
            await session.execute(select(ApiToken).where(ApiToken.digest == tokens.digest(token)))
        ).scalar_one()


async def token_entries(db: Db, start: int = 0) -> list[AuditEntry]:
    """The audit trail's token entries after entry `start`."""
    async with read_session(db) as session:
        found = await session.execute(
            select(AuditEntry)
            .where(AuditEntry.action.startswith("token."), AuditEntry.id > start)
            .order_by(AuditEntry.id)
        )
        return list(found.scalars())


async def last_entry(db: Db) -> int:
    async with read_session(db) as session:
        return int(await session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc())) or 0)


def facts(entry: AuditEntry) -> dict[str, Any]:
    """An entry's before/after as dicts, whether the column hands back JSON or text."""

    def load(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    return {"before": load(entry.before), "after": load(entry.after)}


async def new_token(db: Db, username: str, label: str = "", days: int = 90) -> str:
    async with write_session(db) as session:
        return await users.create_api_token(
            session, WHOLE_TREE, "test", username, label=label, expires_days=days
        )


# ---- expiry ---------------------------------------------------------------------------------


async def test_a_token_expires(client: Client, db: Db, world: World) -> None:
    token = world.tokens["reviewer@a"]
    row = await row_of(db, token)
    assert row.expires_at - row.created_at == 90 * DAY, "the default lifetime is 90 days"
    assert await status_of(client, token) == 200

    async with write_session(db) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == row.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await status_of(client, token) == 401
    assert await status_of(client, world.tokens["operator@a"]) == 200, "others still work"


# ---- the API ---------------------------------------------------------------------------------


async def test_create_list_and_revoke_own_tokens_by_api(
    client: Client, db: Db, world: World, spec: dict[str, Any]
) -> None:
    operator = world.auth("operator", "a")
    # A token it makes may not outlive the token it is made with (see below): give that one room.
    async with write_session(db) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.digest == tokens.digest(world.tokens["operator@a"]))
            .values(expires_at=datetime.now(UTC) + 300 * DAY)
        )
    start = await last_entry(db)
    made = await check(
        client,
        spec,
        "post",
        "/api/v1/tokens",
        201,
        headers=operator,
        json={"label": "nightly export", "expires_days": 30},
    )
    raw = made["token"]
    assert re.fullmatch(r"hu_[A-Za-z0-9_-]{43}", raw)
    assert (made["label"], made["state"], made["hint"]) == ("nightly export", "active", raw[:8])
    created = datetime.fromisoformat(made["created_at"])
    assert datetime.fromisoformat(made["expires_at"]) - created == 30 * DAY
    assert await status_of(client, raw) == 200
    row = await row_of(db, raw)
    assert (row.id, row.label) == (made["id"], "nightly export")

    # The default is 90 days; more than 365, none, or not a number is refused.
    plain = await check(client, spec, "post", "/api/v1/tokens", 201, headers=operator, json={})
    assert (
        datetime.fromisoformat(plain["expires_at"]) - datetime.fromisoformat(plain["created_at"])
        == 90 * DAY
    )
    for days in (366, 0, -1, "30", 1.5, True):
        refused = await check(
            client,
            spec,
            "post",
            "/api/v1/tokens",
            422,
            headers=operator,
            json={"expires_days": days},
        )
        assert "expires_days" in refused["error"]["fields"], days
    await check(client, spec, "post", "/api/v1/tokens", 401, json={})

    listed = await check(client, spec, "get", "/api/v1/tokens", 200, headers=operator)
    own = {item["id"]: item for item in listed["tokens"]}
    assert made["id"] in own and plain["id"] in own
    listed_made = own[made["id"]]
    assert listed_made["last_used_at"] is not None, "it was used above"
    assert {**listed_made, "last_used_at": None} == {k: v for k, v in made.items() if k != "token"}
    assert raw not in str(listed) and tokens.digest(raw) not in str(listed)
    others = await check(
        client, spec, "get", "/api/v1/tokens", 200, headers=world.auth("operator", "b")
    )
    assert made["id"] not in {item["id"] for item in others["tokens"]}

    revoked = await check(
        client, spec, "delete", f"/api/v1/tokens/{made['id']}", 200, headers=operator
    )
    assert (revoked["id"], revoked["state"]) == (made["id"], "revoked")
    assert revoked["revoked_at"] is not None
    assert await status_of(client, raw) == 401
    assert (await row_of(db, raw)).revoked_at is not None
    again = await check(
        client, spec, "delete", f"/api/v1/tokens/{made['id']}", 200, headers=operator
    )
    assert again["revoked_at"] == revoked["revoked_at"], "revoking twice changes nothing"
    await check(client, spec, "delete", f"/api/v1/tokens/{made['id']}", 401)

    # Another user's token is not one's own: 404, just like a token that does not exist.
    reviewer_row = await row_of(db, world.tokens["reviewer@a"])
    foreign = await check(
        client, spec, "delete", f"/api/v1/tokens/{reviewer_row.id}", 404, headers=operator
    )
    missing = await check(client, spec, "delete", "/api/v1/tokens/999999", 404, headers=operator)
    garbage = await check(client, spec, "delete", "/api/v1/tokens/abc", 404, headers=operator)
    assert foreign == missing == garbage
    assert await status_of(client, world.tokens["reviewer@a"]) == 200

    entries = await token_entries(db, start)
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("user:operator-a", "token.create", "operator-a"),
        ("user:operator-a", "token.create", "operator-a"),
        ("user:operator-a", "token.revoke", "operator-a"),
    ]
    assert facts(entries[0])["after"] == {
        "token_hint": raw[:8],
        "label": "nightly export",
        "expires_at": made["expires_at"].replace("Z", "+00:00"),
    }
    assert facts(entries[2])["before"] == {"tokens": [raw[:8]]}


async def test_a_token_cannot_outlive_the_token_that_made_it(
    client: Client, db: Db, world: World
) -> None:
    parent = world.tokens["operator@a"]
    soon = (datetime.now(UTC) + 10 * DAY).replace(microsecond=0)
    async with write_session(db) as session:
        await session.execute(
            update(ApiToken).where(ApiToken.digest == tokens.digest(parent)).values(expires_at=soon)
        )
    answer = await client.post("/api/v1/tokens", json={"expires_days": 365}, headers=bearer(parent))
    assert answer.status == 201
    made = await answer.json()
    assert datetime.fromisoformat(made["expires_at"]) == soon


async def test_admins_revoke_tokens_only_in_their_subtree(
    client: Client, db: Db, world: World, spec: dict[str, Any]
) -> None:
    ids = {key: (await row_of(db, token)).id for key, token in world.tokens.items()}
    admin_a, admin_b = world.auth("admin", "a"), world.auth("admin", "b")

    outside = await check(
        client, spec, "delete", f"/api/v1/tokens/{ids['operator@b']}", 404, headers=admin_a
    )
    missing = await check(client, spec, "delete", "/api/v1/tokens/999999", 404, headers=admin_a)
    assert outside == missing
    # A whole-tree account lies outside every subtree.
    await check(client, spec, "delete", f"/api/v1/tokens/{ids['admin@all']}", 404, headers=admin_a)
    # A non-admin revokes nobody else's, even in their own subtree.
    await check(
        client,
        spec,
        "delete",
        f"/api/v1/tokens/{ids['operator@a']}",
        404,
        headers=world.auth("reviewer", "a"),
    )
    assert await status_of(client, world.tokens["operator@b"]) == 200
    assert await status_of(client, world.tokens["admin@all"]) == 200
    assert await status_of(client, world.tokens["operator@a"]) == 200

    start = await last_entry(db)
    inside = await check(
        client, spec, "delete", f"/api/v1/tokens/{ids['operator@a']}", 200, headers=admin_a
    )
    assert inside["state"] == "revoked"
    assert await status_of(client, world.tokens["operator@a"]) == 401
    await check(client, spec, "delete", f"/api/v1/tokens/{ids['operator@b']}", 200, headers=admin_b)
    await check(
        client,
        spec,
        "delete",
        f"/api/v1/tokens/{ids['reviewer@b']}",
        200,
        headers=world.auth("admin", "all"),
    )
    assert await status_of(client, world.tokens["operator@b"]) == 401
    assert await status_of(client, world.tokens["reviewer@b"]) == 401
    entries = await token_entries(db, start)
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("user:admin-a", "token.revoke", "operator-a"),
        ("user:admin-b", "token.revoke", "operator-b"),
        ("user:root", "token.revoke", "reviewer-b"),
    ]


# ---- pages -----------------------------------------------------------------------------------


async def test_revoke_from_the_users_page_and_from_ones_own_page(
    client: Client, db: Db, world: World
) -> None:
    victim = await new_token(db, "operator-a", label="报表脚本", days=7)
    victim_id = (await row_of(db, victim)).id
    foreign_id = (await row_of(db, world.tokens["operator@b"])).id
    await give_password(db, "admin-a", "reviewer-a")
    async with Browser(client) as admin:
        csrf = await admin.signed_in("admin-a")
        async with admin.request("GET", "/users?edit=operator-a") as response:
            html = await response.text()
            assert response.status == 200
        assert "报表脚本" in html and victim[:8] in html
        assert f"/tokens/{victim_id}/revoke" in html
        assert victim not in html and tokens.digest(victim) not in html

        form = {"csrf_token": csrf, "back": "users"}
        async with admin.request("POST", f"/tokens/{foreign_id}/revoke", data=form) as response:
            assert response.status == 404
        async with admin.request("POST", f"/tokens/{victim_id}/revoke", data={}) as response:
            assert response.status == 403, "no CSRF token, no revocation"
        assert await status_of(client, victim) == 200
        async with admin.request("POST", f"/tokens/{victim_id}/revoke", data=form) as response:
            assert response.status == 303
            location = response.headers["Location"]
        assert location.startswith("/users?") and "edit=operator-a" in location
        assert await status_of(client, victim) == 401
        assert await status_of(client, world.tokens["operator@b"]) == 200
        async with admin.request("GET", location) as response:
            assert "已撤销" in await response.text()

    async with Browser(client) as own:
        csrf = await own.signed_in("reviewer-a")
        async with own.request("GET", "/tokens") as response:
            html = await response.text()
            assert response.status == 200
        mine = await row_of(db, world.tokens["reviewer@a"])
        assert mine.hint in html and "API 令牌" in html
        form = {"csrf_token": csrf, "label": "我的脚本", "expires_days": "14"}
        async with own.request("POST", "/tokens", data=form) as response:
            html = await response.text()
            assert response.status == 200
        shown = re.findall(r"hu_[A-Za-z0-9_-]{43}", html)
        assert len(set(shown)) == 1, "the new token is shown, once"
        made = await row_of(db, shown[0])
        assert made.label == "我的脚本" and made.expires_at - made.created_at == 14 * DAY
        async with own.request("GET", "/tokens") as response:
            assert shown[0] not in await response.text()
        too_long = {**form, "expires_days": "400"}
        async with own.request("POST", "/tokens", data=too_long) as response:
            assert response.status == 422
        async with own.request(
            "POST", f"/tokens/{made.id}/revoke", data={"csrf_token": csrf}
        ) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/tokens?")
        async with own.request(
            "POST", f"/tokens/{foreign_id}/revoke", data={"csrf_token": csrf}
        ) as response:
            assert response.status == 404
    assert await status_of(client, shown[0]) == 401
    assert await status_of(client, world.tokens["reviewer@a"]) == 200


# ---- the command line -----------------------------------------------------------------------


def cli_env(settings: Settings) -> dict[str, str]:
    return clean_env(
        HETANG_DATABASE_URL=settings.database_url,
        HETANG_SECRET_KEY=SECRET,
        HETANG_DATA_DIR=str(settings.data_dir),
        HETANG_LOCALE="en",
    )


def failing(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A `hetang` run that must fail with one line on stderr and no traceback."""
    ran = subprocess.run(
        [str(BIN / "hetang"), "--log-level", "WARNING", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode != 0, ran
    assert ran.stderr.startswith("hetang: ") and "Traceback" not in ran.stderr, ran.stderr
    return ran


async def test_list_and_revoke_by_cli(
    client: Client, db: Db, world: World, settings: Settings
) -> None:
    env = cli_env(settings)
    out = await asyncio.to_thread(
        hetang, env, "token", "create", "operator-a", "--label", "ci", "--expires-days", "7"
    )
    made = out.strip()
    assert re.fullmatch(r"hu_[A-Za-z0-9_-]{43}", made), out
    row = await row_of(db, made)
    assert (row.label, row.expires_at - row.created_at) == ("ci", 7 * DAY)
    assert await status_of(client, made) == 200
    default = (await asyncio.to_thread(hetang, env, "token", "create", "operator-a")).strip()
    default_row = await row_of(db, default)
    assert default_row.expires_at - default_row.created_at == 90 * DAY

    listing = await asyncio.to_thread(hetang, env, "token", "list", "operator-a")
    lines = listing.splitlines()
    assert lines[0].split("\t")[:3] == ["id", "state", "expires_at"]
    by_id = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert set(by_id) == {
        str(row.id),
        str(default_row.id),
        str((await row_of(db, world.tokens["operator@a"])).id),
    }
    assert by_id[str(row.id)][1] == "active" and by_id[str(row.id)][-1] == "ci"
    assert made[:8] in listing and made not in listing

    start = await last_entry(db)
    await asyncio.to_thread(hetang, env, "token", "revoke", str(row.id))
    assert await status_of(client, made) == 401
    assert await status_of(client, default) == 200
    listing = await asyncio.to_thread(hetang, env, "token", "list", "operator-a")
    assert f"{row.id}\trevoked\t" in listing
    entries = await token_entries(db, start)
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("cli", "token.revoke", "operator-a")
    ]

    too_long = await asyncio.to_thread(
        failing, env, "token", "create", "operator-a", "--expires-days", "366"
    )
    assert "expires" in too_long.stderr
    await asyncio.to_thread(failing, env, "token", "revoke", "999999")
    await asyncio.to_thread(failing, env, "token", "list", "nobody")


# ---- a new password or a blocked account ends every token -----------------------------------


async def test_password_reset_and_deactivation_revoke_every_token(
    client: Client, db: Db, world: World
) -> None:
    second = await new_token(db, "operator-a", label="second")
    operator_tokens = [world.tokens["operator@a"], second]
    await give_password(db, "admin-a")
    start = await last_entry(db)
    async with Browser(client) as admin:
        csrf = await admin.signed_in("admin-a")
        form = {"csrf_token": csrf, "password": "a-brand-new-password"}
        async with admin.request("POST", "/users/operator-a/password", data=form) as response:
            assert response.status == 303
        for token in operator_tokens:
            assert await status_of(client, token) == 401
            assert (await row_of(db, token)).revoked_at is not None
        assert await status_of(client, world.tokens["reviewer@a"]) == 200

        # Blocked, then allowed again: the tokens stay revoked.
        blocked = {"csrf_token": csrf, "role": "reviewer", "org_code": "a", "display_name": "r"}
        async with admin.request("POST", "/users/reviewer-a", data=blocked) as response:
            assert response.status == 303
        assert (await row_of(db, world.tokens["reviewer@a"])).revoked_at is not None
        allowed = {**blocked, "is_active": "on"}
        async with admin.request("POST", "/users/reviewer-a", data=allowed) as response:
            assert response.status == 303
        assert await status_of(client, world.tokens["reviewer@a"]) == 401

    # The service itself, as the CLI and every other caller use it.
    async with write_session(db) as session:
        await users.set_password(session, WHOLE_TREE, "test", "venue-staff-a", "some-hash")
    assert await status_of(client, world.tokens["venue_staff@a"]) == 401

    entries = await token_entries(db, start)
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("user:admin-a", "token.revoke", "operator-a"),
        ("user:admin-a", "token.revoke", "reviewer-a"),
        ("test", "token.revoke", "venue-staff-a"),
    ]
    assert sorted(facts(entries[0])["before"]["tokens"]) == sorted(t[:8] for t in operator_tokens)
    assert [e.note for e in entries] == ["password set", "account blocked", "password set"]


# ---- storage and schema ---------------------------------------------------------------------


async def test_tokens_are_stored_only_as_digests(
    client: Client, db: Db, world: World, settings: Settings
) -> None:
    answer = await client.post(
        "/api/v1/tokens", json={"label": "x"}, headers=world.auth("admin", "a")
    )
    made = [(await answer.json())["token"]]
    made.append(
        (
            await asyncio.to_thread(hetang, cli_env(settings), "token", "create", "reviewer-b")
        ).strip()
    )
    secrets = [*world.tokens.values(), *made]
    async with read_session(db) as session:
        stored = [
            str(value)
            for table in ("api_tokens", "audit_entries")
            for row in await session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
            for value in row
        ]
        digests = set((await session.execute(select(ApiToken.digest))).scalars())
    everything = "\n".join(stored)
    for secret in secrets:
        assert secret not in everything
        assert tokens.digest(secret) in digests


@pytest.mark.sqlite_only  # the revision's own data step, tried on the file the tests copy
async def test_the_migration_gives_existing_tokens_90_days(
    db: Db, world: World, database_url: str
) -> None:
    async with read_session(db) as session:
        count = len((await session.execute(select(ApiToken.id))).all())
    await asyncio.to_thread(downgrade, database_url, "0007")
    before = datetime.now(UTC).replace(microsecond=0)
    await asyncio.to_thread(upgrade, database_url)
    after = datetime.now(UTC)
    async with read_session(db) as session:
        rows = list((await session.execute(select(ApiToken))).scalars())
        names = set((await session.execute(select(User.username))).scalars())
    assert len(rows) == count and "operator-a" in names
    for row in rows:
        assert before + 90 * DAY <= row.expires_at <= after + 90 * DAY
        assert row.label == "" and row.revoked_at is None

    def diffs(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return [d for d in compare_metadata(context, Base.metadata) if "api_tokens" in repr(d)]

    engine = make_engine(database_url)
    async with engine.connect() as connection:
        found = await connection.run_sync(diffs)
    await engine.dispose()
    assert found == []


def test_the_readme_names_the_token_commands() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    for words in ("hetang token list USERNAME", "hetang token revoke ID", "--expires-days"):
        assert words in readme, words
