"""Signing in the way a browser does: a cookie jar of its own, the login form's CSRF field, and the
CSRF token a rendered page carries. Shared by the security, error and authorization tests."""

from __future__ import annotations

import functools
import re
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import aiohttp
from argon2 import PasswordHasher
from sqlalchemy import update
from yarl import URL

from server.auth.principal import WHOLE_TREE
from server.db.models import User
from server.db.session import write_session
from server.services import users
from tests.support.client import Client
from tests.support.databases import Db

PASSWORD = "correct-horse-battery"
SESSION_COOKIE = "hetang_session"
PRELOGIN_COOKIE = "hetang_prelogin"
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]*)"')


@functools.cache
def password_hash() -> str:
    """One argon2id hash of PASSWORD per test process, made with the least work argon2 allows:
    the server verifies with the parameters a hash carries, so every sign-in of the suite costs
    a millisecond instead of a sixth of a second. (The server's own hashes keep their cost;
    tests of hashing itself use PasswordService.)"""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


async def give_password(db: Db, *usernames: str) -> None:
    """Let existing users sign in with PASSWORD, keeping their API tokens: written straight to
    the table, for a password set through users.set_password revokes every token of the user."""
    async with write_session(db) as session:
        for username in usernames:
            changed = await session.execute(
                update(User).where(User.username == username).values(password_hash=password_hash())
            )
            assert changed.rowcount == 1, f"no user {username}"


async def add_user(
    db: Db,
    username: str,
    role: str = "admin",
    org_code: str | None = None,
    display_name: str | None = None,
) -> None:
    """A user who signs in with PASSWORD."""
    async with write_session(db) as session:
        await users.create_user(
            session,
            WHOLE_TREE,
            "test",
            username=username,
            display_name=display_name or username,
            role=role,
            org_code=org_code,
            password_hash=password_hash(),
        )


def csrf_field(html: str) -> str | None:
    """The value of the first hidden csrf_token input of a page."""
    found = CSRF_INPUT.search(html)
    return found.group(1) if found else None


class Browser:
    """One browser against the test server: its own cookies, never shared with other callers."""

    def __init__(self, client: Client) -> None:
        self._base = str(client.make_url("/"))
        self.jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
        self.session = aiohttp.ClientSession(base_url=self._base, cookie_jar=self.jar)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.session.close()

    def request(
        self, method: str, path: str, **kwargs: Any
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """A request that never follows redirects (tests look at them)."""
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, path, **kwargs)

    def cookie(self, name: str) -> str | None:
        """The value of a cookie the browser holds, or None."""
        for morsel in self.jar:
            if morsel.key == name:
                return morsel.value
        return None

    def set_cookie(self, name: str, value: str) -> None:
        """Plant a cookie, as an attacker might."""
        self.jar.update_cookies({name: value}, URL(self._base))

    async def login_form(self, next_path: str | None = None) -> str:
        """Open the sign-in form (which sets the pre-login cookie); return its CSRF field."""
        params = {"next": next_path} if next_path is not None else None
        async with self.request("GET", "/login", params=params) as response:
            assert response.status == 200, response.status
            token = csrf_field(await response.text())
        assert token, "the sign-in form has no csrf_token field"
        return token

    async def sign_in(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        next_path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Open and submit the sign-in form like a person would; the response is read."""
        token = await self.login_form(next_path)
        return await self.submit_login(
            username, password, token, next_path=next_path, headers=headers
        )

    async def submit_login(
        self,
        username: str,
        password: str,
        token: str,
        *,
        next_path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Submit the sign-in form opened earlier (its CSRF field given); the response is read."""
        params = {"next": next_path} if next_path is not None else None
        async with self.request(
            "POST",
            "/login",
            params=params,
            data={"username": username, "password": password, "csrf_token": token},
            headers=headers,
        ) as response:
            await response.read()
            return response

    async def signed_in(self, username: str) -> str:
        """Sign in (which must succeed) and return the page CSRF token of the new session."""
        response = await self.sign_in(username)
        assert response.status == 302, (response.status, await response.text())
        return await self.csrf_token()

    async def csrf_token(self) -> str:
        """The CSRF token as a rendered page carries it (the start page's sign-out form)."""
        async with self.request("GET", "/") as response:
            html = await response.text()
            assert response.status == 200, (response.status, html[:500])
        token = csrf_field(html)
        assert token, "the start page has no csrf_token field"
        return token
