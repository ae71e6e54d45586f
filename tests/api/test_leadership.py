"""Of several server processes on one database, one runs the background jobs
(server/live/leader.py). On PostgreSQL the first to ask leads and keeps leading; when its
connection dies, as it does when the process is killed with -9 (the backend terminated), the
next process to ask takes the lead; a leader that gives the lead up on shutdown hands it on at
once. On SQLite the one process always leads."""

from __future__ import annotations

from sqlalchemy import text

from server.db.session import make_engine
from server.live.leader import JOBS_LOCK, Leadership

KEY = JOBS_LOCK + 1  # not the running apps' lock: this test's own


async def _holder_pid(url: str) -> int:
    """The backend holding this test's advisory lock, seen from another connection."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            pid = await connection.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": KEY & 0xFFFFFFFFFFFFFFFF},
            )
            assert pid is not None, "nobody holds the lock"
            return int(pid)
    finally:
        await engine.dispose()


async def _terminate(url: str, pid: int) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await connection.commit()
    finally:
        await engine.dispose()


async def test_one_process_leads_and_a_dead_leader_is_replaced(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(3)]
    processes = [Leadership(engine, KEY) for engine in engines]
    try:
        if not processes[0].shared:  # SQLite: one process, which always leads
            assert [await p.leads() for p in processes] == [True, True, True]
            return
        assert [await p.leads() for p in processes] == [True, False, False]
        assert [await p.leads() for p in processes] == [True, False, False]  # it stays

        # The leader's process dies: its connection ends, and the lock with it.
        await _terminate(database_url, await _holder_pid(database_url))
        assert await processes[1].leads()
        assert [await p.leads() for p in processes] == [False, True, False]

        # A leader shutting down gives the lead up: the next to ask takes it.
        await processes[1].close()
        assert [await p.leads() for p in (processes[2], processes[0])] == [True, False]
    finally:
        for process in processes:
            await process.close()
        for engine in engines:
            await engine.dispose()
