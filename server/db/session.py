"""Engine and session factories; `db_ctx` puts them on the app for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from server.domain.audit_chain import AuditSeal

WRITE_OPTION = "hetang_write"
AUDIT_SEAL_INFO = "hetang_audit_seal"  # the key of a session's `info` that holds its seal
# Any fixed 64-bit key: every audited writer on PostgreSQL serializes on it.
AUDIT_LOCK_KEY = 0x48455441


def make_engine(
    url: str,
    *,
    echo: bool = False,
    foreign_keys: bool = True,
    pool_size: int = 10,
    pool_timeout_s: float = 30.0,
) -> AsyncEngine:
    """Create the engine; SQLite gets WAL, foreign keys, FULL sync and writer locking.
    Migrations turn SQLite's foreign keys off: a batch table copy drops the old table, and with
    them on that drop would cascade into every child row."""
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine, foreign_keys)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
    )


def _create_private_sqlite_file(url: str) -> None:
    """Create a missing SQLite file readable by this user alone (members, audit trail); SQLite
    gives its -wal and -shm files the same mode. Memory databases and URIs are left to SQLite,
    and so is a file that cannot be made here (SQLite's own error will say why)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(OSError):  # FileExistsError above all
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: AsyncEngine, foreign_keys: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so BEGIN can be chosen below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock at BEGIN: a read-then-write transaction can then never
        # fail half-way with SQLITE_BUSY_SNAPSHOT when another writer got there first.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Sessions(async_sessionmaker[AsyncSession]):
    """A session factory that also queues this process's SQLite writers first come, first
    served: SQLite takes one writer at a time, and its own busy-wait retries are neither fair
    nor quick (a burst of agents saw seconds-long stalls). Its sessions carry the process's
    audit seal, if it has one, in `info` (see `audit_seal_of`)."""

    def __init__(self, engine: AsyncEngine, seal: AuditSeal | None = None) -> None:
        info = {AUDIT_SEAL_INFO: seal} if seal is not None else None
        super().__init__(engine, expire_on_commit=False, info=info)
        self.write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None


def make_sessionmaker(engine: AsyncEngine, seal: AuditSeal | None = None) -> Sessions:
    """Sessions never expire on commit; relationships are loaded explicitly. With a seal, the
    audit entries they write are keyed and anchored (the server and the CLI always give one;
    without it, as in tests' own factories, entries are written the legacy, unkeyed way)."""
    return Sessions(engine, seal)


def audit_seal_of(session: AsyncSession) -> AuditSeal | None:
    """The audit seal of the factory that made this session, if it had one."""
    seal = session.info.get(AUDIT_SEAL_INFO)
    return seal if isinstance(seal, AuditSeal) else None


@asynccontextmanager
async def read_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads; its transaction is rolled back at the end."""
    async with factory() as session:
        yield session


@asynccontextmanager
async def write_session(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose single transaction commits on success and rolls back on any error."""
    lock = factory.write_lock if isinstance(factory, Sessions) else None
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        session = await stack.enter_async_context(factory())
        await stack.enter_async_context(session.begin())
        await session.connection(execution_options={WRITE_OPTION: True})
        yield session


async def lock_for_audit(session: AsyncSession) -> None:
    """Serialize audited writers (PostgreSQL); SQLite writers are already serialized."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
