"""Which server process runs the background jobs (the workflow clock's rounds: ending and
finalizing sessions, monthly reports, recordings' retention, make-up replays): one at a time,
however many processes serve the same database.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own, kept
outside any transaction. When the leader dies, even by kill -9, PostgreSQL ends its connection
and releases the lock with it, and the next process that asks takes it over. Losing the
connection (a database restart) loses the lead. The lead is taken back only when the lock can
be taken again.

SQLite serves one process: its only process always leads."""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)
# The advisory lock's key, the same in every process: the bytes "htg:jobs" as a signed int64.
JOBS_LOCK = int.from_bytes(b"htg:jobs", "big", signed=True)


class Leadership:
    """Whether this process leads the background jobs; ask at the start of every round."""

    def __init__(self, engine: AsyncEngine, key: int = JOBS_LOCK) -> None:
        self.engine, self.key = engine, key
        self._held: AsyncConnection | None = None

    @property
    def shared(self) -> bool:
        """True when several processes may share the database (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    async def leads(self) -> bool:
        """True when this process leads now: it held the lock and its connection still
        answers, or it has just taken the lock."""
        if not self.shared:
            return True
        if self._held is not None:
            try:
                await self._held.execute(text("SELECT 1"))
                return True
            except (DBAPIError, OperationalError, OSError):
                log.warning("lost the connection that held the background jobs' lock")
                await self._drop()
        return await self._take()

    async def _take(self) -> bool:
        try:
            connection = await self.engine.connect()
        except (DBAPIError, OperationalError, OSError):
            return False
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
        except (DBAPIError, OperationalError, OSError):
            taken = False
        if not taken:
            await connection.close()
            return False
        self._held = connection
        log.info("this process now runs the background jobs")
        return True

    async def _drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(DBAPIError, OperationalError, OSError):
                await held.invalidate()  # never back into the pool: its session held the lock

    async def close(self) -> None:
        """Give the lead up (on shutdown): the lock is released with the connection."""
        held, self._held = self._held, None
        if held is None:
            return
        with contextlib.suppress(DBAPIError, OperationalError, OSError):
            await held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        with contextlib.suppress(DBAPIError, OperationalError, OSError):
            await held.invalidate()
