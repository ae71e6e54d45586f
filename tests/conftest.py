"""Shared fixtures: a migrated database (SQLite, and PostgreSQL when configured), the real app on a
real port, and a small organization tree with a user of every role in two subtrees."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection
from pytest_aiohttp import AiohttpClient
from sqlalchemy import text

from passthrough.peer import IceSettings, new_peer
from server.app import create_app
from server.db.base import Base
from server.db.migrate import upgrade
from server.db.session import make_engine, make_sessionmaker
from server.settings import Settings
from tests.support.client import Client
from tests.support.databases import PG_ENV, Db, backends, fresh_pg_database
from tests.support.procs import Agents, Server, new_server, server_template
from tests.support.rtc_peers import LOOPBACK, PeerFactory, close_all
from tests.support.world import SECRET, World, seed_world


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


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
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        on_pg = params is not None and params.params.get("database_url") == "postgresql"
        (dropped if on_pg and item.get_closest_marker("sqlite_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each configured kind."""
    if request.param == "sqlite":
        path = tmp_path / "hetang.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
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
async def client(aiohttp_client: AiohttpClient, settings: Settings, db: Db) -> Client:
    """The real app on a real port on 127.0.0.1."""
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def world(db: Db) -> World:
    """The tree, and a token for every role in subtree a and b, plus a whole-tree admin."""
    return await seed_world(db)


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


@pytest.fixture
def agents() -> Iterator[Agents]:
    """The agents of one test."""
    pool = Agents()
    yield pool
    for agent in pool.started:
        agent.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root can mount one; skipped where it cannot): a disk that fills up."""
    if shutil.which("mount") is None:
        pytest.skip("mount is not available")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        check=False,
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
