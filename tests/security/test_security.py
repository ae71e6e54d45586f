"""Sign-in, sessions, CSRF, tokens and the protective headers, against the real app."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from server.auth.principal import WHOLE_TREE
from server.db.models import LoginSession, Organization
from server.db.session import read_session, write_session
from server.services import users
from tests.support.browser import PASSWORD, SESSION_COOKIE, Browser, give_password
from tests.support.client import Client
from tests.support.world import World

ORG = {"code": "csrf-org", "name": "党委", "level": "committee", "parent_code": "a"}


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def login_sessions(db: async_sessionmaker[AsyncSession]) -> list[str]:
    async with read_session(db) as session:
        return list((await session.execute(select(LoginSession.digest))).scalars())


async def org_count(db: async_sessionmaker[AsyncSession]) -> int:
    async with read_session(db) as session:
        return int(await session.scalar(select(func.count()).select_from(Organization)) or 0)


async def me(client: Client, cookie: str) -> int:
    """GET /api/v1/me with nothing but this session cookie; the status."""
    async with Browser(client) as browser:
        browser.set_cookie(SESSION_COOKIE, cookie)
        async with browser.request("GET", "/api/v1/me") as response:
            return int(response.status)


@pytest.fixture
async def signed_up(db: async_sessionmaker[AsyncSession], world: World) -> World:
    """The world, where admin-a, reviewer-a and admin-b also have a password."""
    await give_password(db, "admin-a", "reviewer-a", "admin-b")
    return world


async def test_sign_in_gives_a_fresh_session_cookie(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        browser.set_cookie(SESSION_COOKIE, "planted-by-an-attacker")
        response = await browser.sign_in("admin-a")
        assert response.status == 302
        assert response.headers["Location"] == "/"
        morsel = response.cookies[SESSION_COOKIE]
        first = morsel.value
        assert first != "planted-by-an-attacker"
        assert len(first) >= 40
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert not morsel["secure"], "plain http: a Secure cookie would never come back"
        assert await login_sessions(db) == [sha256(first)]
        assert await me(client, first) == 200
        assert await me(client, "planted-by-an-attacker") == 401

    # Signing in over a live session replaces it: a new value, and the old one is dead.
    async with Browser(client) as browser:
        form_token = await browser.login_form()
        browser.set_cookie(SESSION_COOKIE, first)
        response = await browser.submit_login("admin-a", PASSWORD, form_token)
        assert response.status == 302
        second = response.cookies[SESSION_COOKIE].value
        assert second != first
        assert await login_sessions(db) == [sha256(second)]
        assert await me(client, first) == 401
        assert await me(client, second) == 200


async def test_unknown_user_and_wrong_password_answer_alike(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    answers = []
    async with Browser(client) as browser:
        for username in ("nobody-here", "admin-a", "operator-a"):  # operator-a has no password
            response = await browser.sign_in(username, "not-the-password")
            body = (await response.text()).replace(username, "<USER>")
            answers.append((response.status, body, SESSION_COOKIE in response.cookies))
    assert answers[0][0] == 401
    assert answers[0] == answers[1] == answers[2]
    assert await login_sessions(db) == []


async def test_throttling_per_account(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        for _ in range(5):
            assert (await browser.sign_in("admin-a", "wrong-password")).status == 401
        # Even the right password waits now, and no session is made.
        throttled = await browser.sign_in("Admin-A", PASSWORD)
        assert throttled.status == 429
        assert int(throttled.headers["Retry-After"]) > 0
        assert SESSION_COOKIE not in throttled.cookies
        assert await login_sessions(db) == []
        # Other accounts from the same address are not locked out by one account's failures.
        assert (await browser.sign_in("reviewer-a")).status == 302


async def test_throttling_per_address(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        for number in range(20):  # the default per-address limit
            assert (await browser.sign_in(f"guess-{number}", "wrong-password")).status == 401
        throttled = await browser.sign_in("reviewer-a", PASSWORD)
        assert throttled.status == 429
        assert int(throttled.headers["Retry-After"]) > 0
    assert await login_sessions(db) == []


async def test_logout_ends_the_session_on_the_server(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        csrf = await browser.signed_in("admin-a")
        cookie = browser.cookie(SESSION_COOKIE)
        assert cookie is not None
        # Without the CSRF token, signing out is refused (and the session lives on).
        async with browser.request("POST", "/logout", data={}) as response:
            assert response.status == 403
        assert await me(client, cookie) == 200
        async with browser.request("POST", "/logout", data={"csrf_token": csrf}) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/login"
        assert browser.cookie(SESSION_COOKIE) in (None, "")
    assert await login_sessions(db) == []
    # Whoever kept a copy of the cookie gets nothing with it.
    assert await me(client, cookie) == 401
    async with Browser(client) as replay:
        replay.set_cookie(SESSION_COOKIE, cookie)
        async with replay.request("GET", "/members") as response:
            assert response.status == 302
            target = URL(response.headers["Location"])
            assert (target.path, target.query["next"]) == ("/login", "/members")


async def test_csrf_protects_cookie_authenticated_writes(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    origin = str(client.make_url("/")).rstrip("/")
    async with Browser(client) as browser, Browser(client) as other:
        csrf = await browser.signed_in("admin-a")
        other_csrf = await other.signed_in("admin-a")
        assert other_csrf != csrf
        before = await org_count(db)

        async def post(headers: dict[str, str]) -> dict[str, Any]:
            async with browser.request(
                "POST",
                "/api/v1/organizations",
                json=ORG,
                headers={"Accept-Language": "en", **headers},
            ) as response:
                return {"status": response.status, **(await response.json())}

        refused = [
            {},
            {"X-CSRF-Token": ""},
            {"X-CSRF-Token": other_csrf},
            {"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
            {"X-CSRF-Token": csrf, "Origin": origin.replace("127.0.0.1", "localhost")},
        ]
        for headers in refused:
            answer = await post(headers)
            assert answer["status"] == 403, (headers, answer)
            assert answer["error"]["code"] == "forbidden"
            assert await org_count(db) == before, headers
        # A page form without its csrf_token field is refused the same way.
        async with browser.request(
            "POST", "/organizations", data={k: v or "" for k, v in ORG.items()}
        ) as response:
            assert response.status == 403
        assert await org_count(db) == before
        # Reading needs no token; the right token from the right origin may write.
        async with browser.request("GET", "/api/v1/organizations") as response:
            assert response.status == 200
        answer = await post({"X-CSRF-Token": csrf, "Origin": origin})
        assert answer["status"] == 201, answer
    assert await org_count(db) == before + 1
    # A bearer token is no ambient credential: no CSRF token needed.
    response = await client.post(
        "/api/v1/organizations", json={**ORG, "code": "bearer-org"}, headers=signed_up.auth("admin")
    )
    assert response.status == 201


async def test_revoked_and_rotated_tokens_stop_working(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    reviewer = signed_up.auth("reviewer", "a")
    assert (await client.get("/api/v1/me", headers=reviewer)).status == 200
    async with write_session(db) as session:
        assert await users.revoke_api_tokens(session, WHOLE_TREE, "test", "reviewer-a") == 1
    response = await client.get("/api/v1/me", headers=reviewer)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"

    # A deactivated account loses its tokens and its browser sessions at once.
    async with Browser(client) as browser:
        await browser.signed_in("admin-b")
        cookie = browser.cookie(SESSION_COOKIE)
    assert cookie is not None and await me(client, cookie) == 200
    async with write_session(db) as session:
        await users.update_user(
            session,
            WHOLE_TREE,
            "test",
            "admin-b",
            role="admin",
            org_code="b",
            display_name="admin-b",
            is_active=False,
        )
    assert (await client.get("/api/v1/me", headers=signed_up.auth("admin", "b"))).status == 401
    assert await me(client, cookie) == 401

    created = await client.post(
        "/api/v1/venues",
        json={"code": "room-1", "name": "会场", "org_code": "a1"},
        headers=signed_up.auth("admin"),
    )
    old = (await created.json())["token"]
    hello = {"agent_version": "1.0", "hostname": "pc"}

    async def agent(token: str) -> int:
        response = await client.post(
            "/api/v1/agent/hello", json=hello, headers={"Authorization": f"Bearer {token}"}
        )
        return int(response.status)

    assert await agent(old) == 200
    rotated = await client.post("/api/v1/venues/room-1/token", headers=signed_up.auth("admin"))
    new = (await rotated.json())["token"]
    assert new != old and new.startswith("hv_")
    assert await agent(old) == 401
    assert await agent(new) == 200


async def test_tokens_and_sessions_are_stored_only_as_digests(
    client: Client,
    db: async_sessionmaker[AsyncSession],
    signed_up: World,
) -> None:
    secrets = list(signed_up.tokens.values())
    created = await client.post(
        "/api/v1/venues",
        json={"code": "room-2", "name": "会场", "org_code": "a1"},
        headers=signed_up.auth("admin"),
    )
    secrets.append((await created.json())["token"])
    rotated = await client.post("/api/v1/venues/room-2/token", headers=signed_up.auth("admin"))
    secrets.append((await rotated.json())["token"])
    async with Browser(client) as browser:
        await browser.signed_in("admin-a")
        cookie = browser.cookie(SESSION_COOKIE)
    assert cookie
    secrets.append(cookie)

    stored: list[str] = []
    async with read_session(db) as session:
        for table in ("api_tokens", "login_sessions", "venues", "audit_entries"):
            for row in await session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                stored.extend(str(value) for value in row)
    everything = "\n".join(stored)
    for secret in secrets:
        assert secret not in everything
    for secret in [*signed_up.tokens.values(), secrets[-2], cookie]:
        assert sha256(secret) in stored, "the digest is what is kept"


async def test_secure_cookie_behind_an_https_proxy(
    client: Client,
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        response = await browser.sign_in("admin-a", headers={"X-Forwarded-Proto": "https"})
        assert response.status == 302
        morsel = response.cookies[SESSION_COOKIE]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"


async def test_security_headers_on_every_kind_of_answer(
    client: Client,
    signed_up: World,
) -> None:
    answers = [
        await client.get("/healthz"),
        await client.get("/login"),
        await client.get("/api/v1/nosuch"),
        await client.get("/nosuch"),
        await client.get("/members", allow_redirects=False),
        await client.get("/api/v1/members"),
        await client.get("/api/v1/me", headers=signed_up.auth("admin")),
        await client.get("/static/app.css"),
    ]
    for response in answers:
        where = f"{response.method} {response.url.path} ({response.status})"
        assert response.headers.get("X-Content-Type-Options") == "nosniff", where
        assert response.headers.get("X-Frame-Options") == "DENY", where
        assert response.headers.get("Referrer-Policy") == "same-origin", where
        policy = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, where
        assert response.headers.get("X-Request-Id"), where
    assert answers[1].headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/members",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",  # browsers drop tabs and newlines: this would be //evil.example
        "/\n/evil.example",
    ],
)
async def test_open_redirects_are_refused(
    client: Client,
    signed_up: World,
    target: str,
) -> None:
    async with Browser(client) as browser:
        response = await browser.sign_in("admin-a", next_path=target)
        assert response.status == 302
        assert response.headers["Location"] == "/"
        # Signed in already, the form sends the browser on: still only to this site.
        async with browser.request("GET", "/login", params={"next": target}) as again:
            assert again.status == 302
            assert again.headers["Location"] == "/"
        async with browser.request("GET", "/lang/en", params={"next": target}) as language:
            assert language.status == 302
            assert language.headers["Location"] == "/"


async def test_a_same_site_next_is_kept(
    client: Client,
    signed_up: World,
) -> None:
    async with Browser(client) as browser:
        response = await browser.sign_in("admin-a", next_path="/members?q=甲")
        assert response.status == 302
        location = URL(response.headers["Location"])
        assert (location.path, location.query["q"]) == ("/members", "甲")
