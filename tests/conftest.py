"""Shared fixtures: a migrated database (SQLite, and PostgreSQL when configured), the real app on a
real port, and a small organization tree with a user of every role in two subtrees."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from passthrough.peer import IceSettings, new_peer
from server.app import create_app
from server.auth.principal import WHOLE_TREE
from server.db.base import Base
from server.db.migrate import upgrade
from server.db.session import make_engine, make_sessionmaker, write_session
from server.domain.organizations import OrgFields
from server.services import organizations, users
from server.settings import Settings
from tests.procs import Agent, Server, new_server, server_template
from tests.rtc_peers import LOOPBACK, PeerFactory, close_all

SECRET = "test-secret-key-" + "x" * 32
PG_ENV = "HETANG_TEST_DATABASE_URL"
REDIS_ENV = "HETANG_TEST_REDIS_URL"


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _pg_admin_url(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def fresh_pg_database(url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `url`; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        engine = make_engine(url)
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_admin_url(url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated; dropped afterwards."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_pg_database(url, "hetang_test") as target:
        upgrade(target)
        yield target


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `sqlite_only` (browser and media tests, whose subject is not the database)
    run on SQLite alone."""
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        on_pg = params is not None and params.params.get("database_url") == "postgresql"
        (dropped if on_pg and item.get_closest_marker("sqlite_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each configured kind."""
    if request.param == "sqlite":
        path = tmp_path / "hetang.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory of the test's own, for seeding and for checking what was stored."""
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def peers() -> AsyncIterator[PeerFactory]:
    """Makes peer connections (loopback-only unless told otherwise) and closes them all."""
    made: list[RTCPeerConnection] = []

    def make(ice: IceSettings = LOOPBACK) -> RTCPeerConnection:
        pc = new_peer(ice)
        made.append(pc)
        return pc

    try:
        yield make
    finally:
        await close_all(made)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings built directly (never from os.environ)."""
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        hash_concurrency=2,
        ice=LOOPBACK,  # WebRTC on loopback, as the one-machine demo runs
    )


@pytest.fixture
async def client(
    aiohttp_client: object, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> TestClient:  # type: ignore[type-arg]
    """The real app on a real port on 127.0.0.1."""
    return await aiohttp_client(create_app(settings))  # type: ignore[operator,no-any-return]


@dataclass
class World:
    """A small tree: city › county A (committee A1 › branch A1a) and county B (committee B1)."""

    tokens: dict[str, str]  # "<role>@<subtree>" → hu_ token; subtree "a", "b" or "all"

    def auth(self, role: str, subtree: str = "a") -> dict[str, str]:
        """The Authorization header of that user."""
        return {"Authorization": f"Bearer {self.tokens[f'{role}@{subtree}']}"}


TREE = [
    OrgFields("city", "滁州市", "city", None),
    OrgFields("a", "凤阳县", "county", "city"),
    OrgFields("a1", "西泉镇党委", "committee", "a"),
    OrgFields("a1a", "西泉村党支部", "branch", "a1"),
    OrgFields("b", "天长市", "county", "city"),
    OrgFields("b1", "铜城镇党委", "committee", "b"),
]
ROLES = ("admin", "operator", "venue_staff", "reviewer")


@pytest.fixture
async def world(db: async_sessionmaker[AsyncSession]) -> World:
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


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A migrated server data dir with an admin token, copied for each server."""
    return server_template(tmp_path_factory.mktemp("server-template") / "data")


@pytest.fixture
def server(template: tuple[Path, str], tmp_path: Path) -> Iterator[Server]:
    """A running server of this test's own."""
    running = new_server(template, tmp_path / "server")
    yield running
    running.stop()


class Agents:
    """Starts real agents; whatever still runs at the end of the test is stopped."""

    def __init__(self) -> None:
        self.started: list[Agent] = []

    def start(self, data_dir: Path, server_url: str, token: str) -> Agent:
        """A running agent whose staff page answers."""
        agent = Agent(data_dir, server_url, token)
        self.started.append(agent)
        return agent


@pytest.fixture
def agents() -> Iterator[Agents]:
    """The agents of one test."""
    pool = Agents()
    yield pool
    for agent in pool.started:
        agent.stop()
