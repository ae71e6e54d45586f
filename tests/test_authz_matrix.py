"""Who may call what: every route of the router × every role × (own subtree, other subtree,
anonymous), from one table. A route the table does not know fails the coverage test."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from yarl import URL

from server.app import create_app
from server.auth.principal import WHOLE_TREE
from server.db.models import Member, Organization, User, Venue
from server.db.session import read_session, write_session
from server.domain.members import MemberFields
from server.domain.venues import VenueFields
from server.services import members, users, venues
from server.settings import Settings
from tests.browser import Browser, give_password
from tests.conftest import ROLES, World

PUBLIC, AGENT = "public", "agent"
ALL = frozenset(ROLES)
READERS = frozenset({"admin", "operator", "reviewer"})
VENUE_READERS = READERS | {"venue_staff"}
ADMIN = frozenset({"admin"})
UNKNOWN_REF = "zz-nosuch"

# What only subtree "a" (or "b") holds: a caller of the other subtree must never see these.
MARKS = {
    "a": (
        "凤阳县",
        "西泉镇党委",
        "西泉村党支部",
        "M-A-1",
        "甲党员",
        "VEN-A",
        "西泉会场",
        "spare-a",
    ),
    "b": ("天长市", "铜城镇党委", "M-B-1", "乙党员", "VEN-B", "铜城会场", "spare-b"),
}

Payload = tuple[str, Any]  # ("json" | "form" | "csv" | "multipart", data)


def _csv(ref: str, fresh: str) -> bytes:
    return f"member_no,name,org_code,category\nM-{fresh},导入党员,{ref},ordinary\n".encode()


@dataclass(frozen=True)
class Route:
    """One row of the matrix: who may call the route, and a request about subtree "a"."""

    method: str
    path: str
    who: frozenset[str] | str  # roles, PUBLIC or AGENT
    scoped: str = "none"  # "object" (404 outside), "create" (422 outside), "list", "none"
    ref: str = ""  # the subtree-a object or organization the request names
    parts: dict[str, str] = field(default_factory=dict)  # URL parts; "{ref}" is replaced
    body: Callable[[str, str], Payload] | None = None  # (ref, fresh code) → payload
    ok: tuple[int, ...] = (200,)  # what success looks like
    created: tuple[InstrumentedAttribute[str], str] | None = None  # column, "{fresh}" template
    lists: str = ""  # "organizations" | "members" | "venues" | "users": which own marks show


MATRIX: dict[str, Route] = {
    # System and sign-in
    "health": Route("GET", "/healthz", PUBLIC),
    "api_me": Route("GET", "/api/v1/me", ALL),
    "login": Route("GET", "/login", PUBLIC, ok=(200, 302)),
    "login_submit": Route(
        "POST",
        "/login",
        PUBLIC,
        body=lambda ref, fresh: ("form", {"username": f"nobody-{fresh}", "password": "x" * 9}),
        ok=(401, 403),  # the form's own answers: wrong password, or no pre-login cookie
    ),
    "logout": Route("POST", "/logout", ALL, body=lambda ref, fresh: ("form", {}), ok=(302,)),
    "language": Route("GET", "/lang/{locale}", PUBLIC, parts={"locale": "en"}, ok=(302,)),
    # JSON API
    "api_create_organization": Route(
        "POST",
        "/api/v1/organizations",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "json",
            {"code": f"O-{fresh}", "name": "新支部", "level": "branch", "parent_code": ref},
        ),
        ok=(201,),
        created=(Organization.code, "O-{fresh}"),
    ),
    "api_list_organizations": Route(
        "GET", "/api/v1/organizations", READERS, "list", lists="organizations"
    ),
    "api_get_organization": Route(
        "GET", "/api/v1/organizations/{code}", READERS, "object", "a1", {"code": "{ref}"}
    ),
    "api_create_member": Route(
        "POST",
        "/api/v1/members",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: (
            "json",
            {"member_no": f"M-{fresh}", "name": "新党员", "org_code": ref, "category": "ordinary"},
        ),
        ok=(201,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "api_import_members": Route(
        "POST",
        "/api/v1/members/import",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: ("csv", _csv(ref, fresh)),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "api_list_members": Route("GET", "/api/v1/members", READERS, "list", lists="members"),
    "api_get_member": Route(
        "GET", "/api/v1/members/{member_no}", READERS, "object", "M-A-1", {"member_no": "{ref}"}
    ),
    "api_create_venue": Route(
        "POST",
        "/api/v1/venues",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: ("json", {"code": f"V-{fresh}", "name": "新会场", "org_code": ref}),
        ok=(201,),
        created=(Venue.code, "V-{fresh}"),
    ),
    "api_list_venues": Route("GET", "/api/v1/venues", VENUE_READERS, "list", lists="venues"),
    "api_get_venue": Route(
        "GET", "/api/v1/venues/{code}", VENUE_READERS, "object", "VEN-A", {"code": "{ref}"}
    ),
    "api_rotate_venue_token": Route(
        "POST", "/api/v1/venues/{code}/token", ADMIN, "object", "VEN-A", {"code": "{ref}"}
    ),
    # Agent API (venue token)
    "agent_hello": Route(
        "POST",
        "/api/v1/agent/hello",
        AGENT,
        body=lambda ref, fresh: ("json", {"agent_version": "1.0", "hostname": "room-pc"}),
    ),
    # Pages
    "home": Route("GET", "/", ALL),
    "organizations": Route("GET", "/organizations", READERS, "list", lists="organizations"),
    "organization_create": Route(
        "POST",
        "/organizations",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "form",
            {"code": f"O-{fresh}", "name": "新支部", "level": "branch", "parent_code": ref},
        ),
        ok=(303,),
        created=(Organization.code, "O-{fresh}"),
    ),
    "members": Route("GET", "/members", READERS, "list", lists="members"),
    "member_create": Route(
        "POST",
        "/members",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: (
            "form",
            {"member_no": f"M-{fresh}", "name": "新党员", "org_code": ref, "category": "ordinary"},
        ),
        ok=(303,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "members_import": Route(
        "POST",
        "/members/import",
        ADMIN,
        "create",
        ref="a1a",
        body=lambda ref, fresh: ("multipart", _csv(ref, fresh)),
        ok=(303,),
        created=(Member.member_no, "M-{fresh}"),
    ),
    "member": Route(
        "GET", "/members/{member_no}", READERS, "object", "M-A-1", {"member_no": "{ref}"}
    ),
    "venues": Route("GET", "/venues", VENUE_READERS, "list", lists="venues"),
    "venue_create": Route(
        "POST",
        "/venues",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: ("form", {"code": f"V-{fresh}", "name": "新会场", "org_code": ref}),
        created=(Venue.code, "V-{fresh}"),
    ),
    "venue_token_confirm": Route(
        "GET", "/venues/{code}/token", ADMIN, "object", "VEN-A", {"code": "{ref}"}
    ),
    "venue_token_rotate": Route(
        "POST",
        "/venues/{code}/token",
        ADMIN,
        "object",
        "VEN-A",
        {"code": "{ref}"},
        body=lambda ref, fresh: ("form", {}),
    ),
    "users": Route("GET", "/users", ADMIN, "list", lists="users"),
    "user_create": Route(
        "POST",
        "/users",
        ADMIN,
        "create",
        ref="a1",
        body=lambda ref, fresh: (
            "form",
            {
                "username": f"u-{fresh}",
                "display_name": "新用户",
                "role": "reviewer",
                "org_code": ref,
                "password": "long-enough-password",
            },
        ),
        ok=(303,),
        created=(User.username, "u-{fresh}"),
    ),
    "user_update": Route(
        "POST",
        "/users/{username}",
        ADMIN,
        "object",
        "spare-a",
        {"username": "{ref}"},
        body=lambda ref, fresh: (
            "form",
            {"role": "operator", "org_code": "a1", "display_name": ref, "is_active": "on"},
        ),
        ok=(303,),
    ),
    "user_password": Route(
        "POST",
        "/users/{username}/password",
        ADMIN,
        "object",
        "spare-a",
        {"username": "{ref}"},
        body=lambda ref, fresh: ("form", {"password": "another-long-password"}),
        ok=(303,),
    ),
}
LIST_MARKS = {
    "organizations": {"a": "凤阳县", "b": "天长市"},
    "members": {"a": "M-A-1", "b": "M-B-1"},
    "venues": {"a": "VEN-A", "b": "VEN-B"},
    "users": {"a": "spare-a", "b": "spare-b"},
}


def router_routes(settings: Settings) -> dict[str, web.AbstractRoute]:
    """Every named route of the real app, except static files and HEAD twins of GET routes."""
    found: dict[str, web.AbstractRoute] = {}
    for route in create_app(settings).router.routes():
        if isinstance(route.resource, web.StaticResource) or route.method == "HEAD":
            continue
        assert route.name, f"{route.method} {route.resource} has no name"
        found[route.name] = route
    return found


def test_router_and_matrix_agree(settings: Settings) -> None:
    """Every route is in the matrix with its method and path, and every matrix row is routed."""
    routes = router_routes(settings)
    unknown = sorted(set(routes) - set(MATRIX))
    missing = sorted(set(MATRIX) - set(routes))
    assert not unknown, f"routes without a row in the authorization matrix: {unknown}"
    assert not missing, f"matrix rows whose routes are not in the router (yet?): {missing}"
    for name, route in routes.items():
        row = MATRIX[name]
        canonical = route.resource.canonical if route.resource else ""
        assert (route.method, canonical) == (row.method, row.path), name


@dataclass
class Caller:
    """Who sends a request: a role in a subtree (token for the API, cookie for pages) or nobody."""

    role: str | None
    subtree: str | None
    token: str | None = None
    browser: Browser | None = None
    csrf: str | None = None

    def __str__(self) -> str:
        return f"{self.role}@{self.subtree}" if self.role else "anonymous"


@dataclass
class Answer:
    """What came back."""

    status: int
    headers: Any
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Run:
    """One app, seeded once, and every request of the matrix sent to it."""

    def __init__(self, client: TestClient, db: async_sessionmaker[AsyncSession]) -> None:  # type: ignore[type-arg]
        self.db = db
        self.plain = Browser(client)  # bearer-token and anonymous API calls; never signed in
        self.counter = itertools.count(1)
        self.failures: list[str] = []

    def fresh(self) -> str:
        return f"{next(self.counter):04d}"

    async def send(self, caller: Caller, route: Route, ref: str, fresh: str) -> Answer:
        path = route.path.format(**{k: v.format(ref=ref) for k, v in route.parts.items()})
        page = not path.startswith("/api/") and route.who != PUBLIC
        browser = caller.browser if (page or route.who == PUBLIC) and caller.browser else self.plain
        headers: dict[str, str] = {}
        if caller.token and browser is self.plain:
            headers["Authorization"] = f"Bearer {caller.token}"
        kwargs: dict[str, Any] = {"headers": headers}
        if route.body is not None:
            kind, data = route.body(ref, fresh)
            csrf = {"csrf_token": caller.csrf} if caller.csrf and browser is not self.plain else {}
            if kind == "json":
                kwargs["json"] = data
            elif kind == "csv":
                kwargs["data"] = data
                headers["Content-Type"] = "text/csv"
            elif kind == "form":
                kwargs["data"] = {**data, **csrf}
            else:
                form = aiohttp.FormData()
                for name, value in csrf.items():
                    form.add_field(name, value)
                form.add_field("file", data, filename="members.csv", content_type="text/csv")
                kwargs["data"] = form
        async with browser.request(route.method, path, **kwargs) as response:
            return Answer(response.status, response.headers, await response.text())

    async def exists(self, route: Route, fresh: str) -> bool:
        assert route.created is not None
        column, template = route.created
        async with read_session(self.db) as session:
            count = await session.scalar(
                select(func.count()).where(column == template.format(fresh=fresh))
            )
        return bool(count)

    def fail(self, name: str, caller: Caller, problem: str, answer: Answer) -> None:
        self.failures.append(
            f"{name} as {caller}: {problem} (got {answer.status}: {answer.text[:160]!r})"
        )

    async def check(self, name: str, route: Route, caller: Caller) -> None:
        """Send the row's request as the caller and compare the answer with the matrix."""
        fresh = self.fresh()
        answer = await self.send(caller, route, route.ref, fresh)
        api = route.path.startswith("/api/")
        if answer.status >= 500:
            self.fail(name, caller, "server error", answer)
            return
        if route.who == PUBLIC:
            if answer.status not in route.ok:
                self.fail(name, caller, f"public route should answer {route.ok}", answer)
            return
        if caller.role is None or route.who == AGENT:
            self._expect_unauthenticated(name, route, caller, answer, api)
        elif caller.role not in route.who:
            if answer.status != 403:
                self.fail(name, caller, "wrong role must be 403", answer)
            elif api and answer.json()["error"]["code"] != "forbidden":
                self.fail(name, caller, "403 without code forbidden", answer)
        else:
            await self._expect_allowed(name, route, caller, answer, fresh)
            return
        if route.created is not None and await self.exists(route, fresh):
            self.fail(name, caller, "refused, yet something was created", answer)

    async def _expect_allowed(
        self, name: str, route: Route, caller: Caller, answer: Answer, fresh: str
    ) -> None:
        """The role may call the route: it works on its own subtree, and sees only that."""
        if caller.subtree == "b" and route.scoped in ("object", "create"):
            await self._expect_invisible(name, route, caller, answer, fresh)
            return
        if answer.status not in route.ok:
            self.fail(name, caller, f"allowed caller should get {route.ok}", answer)
            return
        if route.created is not None and not await self.exists(route, fresh):
            self.fail(name, caller, "success answered but nothing was created", answer)
        if route.scoped == "list":
            own = LIST_MARKS[route.lists]
            for subtree in ("a", "b"):
                if caller.subtree in (subtree, "all") and own[subtree] not in answer.text:
                    self.fail(name, caller, f"list lacks its own {own[subtree]!r}", answer)
        self._expect_no_leak(name, caller, answer)

    def _expect_unauthenticated(
        self, name: str, route: Route, caller: Caller, answer: Answer, api: bool
    ) -> None:
        if api:
            if answer.status != 401:
                self.fail(name, caller, "must be 401", answer)
            elif answer.json()["error"]["code"] != "unauthorized":
                self.fail(name, caller, "401 without code unauthorized", answer)
        elif route.method == "GET":
            target = URL(answer.headers.get("Location", ""))
            path = route.path.format(**{k: v.format(ref=route.ref) for k, v in route.parts.items()})
            if answer.status != 302 or (target.path, target.query.get("next")) != ("/login", path):
                self.fail(name, caller, f"must redirect to /login?next={path}", answer)
        elif answer.status not in (401, 403):
            self.fail(name, caller, "page POST must be 401 or 403", answer)

    async def _expect_invisible(
        self, name: str, route: Route, caller: Caller, answer: Answer, fresh: str
    ) -> None:
        """Outside the caller's subtree an object answers exactly as one that does not exist."""
        expected = 404 if route.scoped == "object" else 422
        if answer.status != expected:
            self.fail(name, caller, f"other subtree must be {expected}", answer)
            return
        if route.created is not None and await self.exists(route, fresh):
            self.fail(name, caller, "created in another subtree", answer)
        other_fresh = self.fresh()
        unknown = await self.send(caller, route, UNKNOWN_REF, other_fresh)

        def normal(text: str) -> str:
            for value, placeholder in (
                (route.ref, "<REF>"),
                (UNKNOWN_REF, "<REF>"),
                (fresh, "<FRESH>"),
                (other_fresh, "<FRESH>"),
            ):
                text = text.replace(value, placeholder)
            return text

        if (unknown.status, normal(unknown.text)) != (answer.status, normal(answer.text)):
            self.fail(name, caller, "answers differently from a code that does not exist", answer)
        self._expect_no_leak(name, caller, Answer(answer.status, {}, normal(answer.text)))

    def _expect_no_leak(self, name: str, caller: Caller, answer: Answer) -> None:
        """Nothing of the other subtree shows in any answer: no names, codes or numbers."""
        other = {"a": "b", "b": "a"}.get(caller.subtree or "")
        leaked = [mark for mark in MARKS[other] if mark in answer.text] if other else []
        if leaked:
            self.fail(name, caller, f"shows the other subtree's {leaked}", answer)


async def seed(db: async_sessionmaker[AsyncSession]) -> None:
    """One member, one venue and one spare user in each subtree."""
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


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
async def test_matrix(
    role: str | None,
    client: TestClient,  # type: ignore[type-arg]
    db: async_sessionmaker[AsyncSession],
    world: World,
    settings: Settings,
) -> None:
    """Every routed row of the matrix, as this role in subtree a, b (and the whole tree), or
    as nobody; every failing cell is listed. Rows not yet routed are the coverage test's."""
    await seed(db)
    routed = router_routes(settings)
    run = Run(client, db)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(run.plain)
        callers: list[Caller] = []
        if role is None:
            callers.append(Caller(None, None, browser=run.plain))
        else:
            subtrees = ["a", "b", "all"] if role == "admin" else ["a", "b"]
            for subtree in subtrees:
                username = "root" if subtree == "all" else f"{role.replace('_', '-')}-{subtree}"
                await give_password(db, username)
                browser = await stack.enter_async_context(Browser(client))
                csrf = await browser.signed_in(username) if "home" in routed else None
                if csrf is None:
                    await browser.sign_in(username)
                token = world.tokens[f"{role}@{subtree}"]
                callers.append(Caller(role, subtree, token, browser, csrf))
        # Signing out last, so every other row still has a session to use.
        order = sorted(MATRIX, key=lambda name: (name == "logout", name))
        for name in order:
            if name not in routed:
                continue
            for caller in callers:
                await run.check(name, MATRIX[name], caller)
    assert not run.failures, "\n".join(["authorization matrix failures:", *run.failures])


@pytest.mark.parametrize("name", [name for name, row in MATRIX.items() if row.who == AGENT])
async def test_agent_routes_need_the_venue_token(
    name: str,
    client: TestClient,  # type: ignore[type-arg]
    db: async_sessionmaker[AsyncSession],
    world: World,
) -> None:
    """No token, a made-up one, a user's hu_ token or a rotated one: 401; the venue's own: OK."""
    route = MATRIX[name]
    created = await client.post(
        "/api/v1/venues",
        json={"code": "AGENT-1", "name": "会场", "org_code": "a1"},
        headers=world.auth("admin", "a"),
    )
    assert created.status == 201
    token = (await created.json())["token"]
    assert token.startswith("hv_")
    run = Run(client, db)
    async with run.plain:

        async def call(authorization: str | None) -> Answer:
            headers = {"Authorization": authorization} if authorization else {}
            kwargs: dict[str, Any] = {"headers": headers}
            if route.body is not None:
                kwargs["json"] = route.body("", "")[1]
            path = route.path.format(**route.parts)
            async with run.plain.request(route.method, path, **kwargs) as response:
                return Answer(response.status, response.headers, await response.text())

        refused = [
            None,
            "Bearer",
            "Bearer hv_not-a-real-token",
            f"Bearer {world.tokens['admin@a']}",
            f"Basic {token}",
            token,
        ]
        for authorization in refused:
            answer = await call(authorization)
            assert answer.status == 401, (authorization, answer)
            assert answer.json()["error"]["code"] == "unauthorized"
        assert (await call(f"Bearer {token}")).status == 200
        rotated = await client.post("/api/v1/venues/AGENT-1/token", headers=world.auth("admin"))
        assert rotated.status == 200
        new_token = (await rotated.json())["token"]
        assert (await call(f"Bearer {token}")).status == 401
        assert (await call(f"Bearer {new_token}")).status == 200
