"""The local SQLite journal: every event is committed here before anyone is told it was taken."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DB_NAME = "agent.sqlite3"
SCHEMA_VERSION = 2  # 2: the newest sample is found by (kind, seq)
KINDS = ("checkin", "sample")
PENDING, SENT, REJECTED = "pending", "sent", "rejected"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('checkin', 'sample')),
    session_id TEXT,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'rejected')),
    reason TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_outbox_state_kind_seq ON outbox (state, kind, seq);
CREATE INDEX IF NOT EXISTS ix_outbox_session_id ON outbox (session_id, seq);
CREATE INDEX IF NOT EXISTS ix_outbox_kind_seq ON outbox (kind, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_COLUMNS = "seq, event_id, kind, session_id, payload, created_at, state, reason"
# The journal's column `session_id` holds the session's public id (the agent knows no other):
# in Python it is `session_public_id`, as on the server.


class OutboxError(Exception):
    """The journal cannot be opened or used (the message says why)."""


@dataclass(frozen=True)
class Event:
    """One journal row: an event as it will be (or was) sent, with its local fate."""

    seq: int
    event_id: str
    kind: str
    session_public_id: str | None
    payload: dict[str, Any]
    created_at: str
    state: str
    reason: str | None


@dataclass(frozen=True)
class NewEvent:
    """An event to journal; state is 'pending' unless it is refused locally."""

    event_id: str
    kind: str
    session_public_id: str | None
    payload: Mapping[str, Any]
    created_at: str
    state: str = PENDING
    reason: str | None = None


@dataclass(frozen=True)
class Counts:
    """How many events wait, went through, or were refused."""

    pending: int
    sent: int
    rejected: int


class Outbox:
    """The journal file; safe to share between the event loop and worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            _make_private(path)
        except OSError as error:
            raise OutboxError(f"cannot use the journal {path}: {error.strerror or error}") from None
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.Error as error:
            raise OutboxError(f"cannot use the journal {path}: {error}") from None

    @classmethod
    def open(cls, data_dir: Path) -> Outbox:
        """The journal in a data directory, created on first use."""
        return cls(data_dir / DB_NAME)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(f"{self.path} was written by a newer hetang-agent")
        if version < SCHEMA_VERSION:
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so a concurrent `import` waits, not fails.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(self, events: Sequence[NewEvent]) -> int:
        """Journal events in one transaction; an event_id already there is skipped. Returns new."""
        rows = [
            (
                e.event_id,
                e.kind,
                e.session_public_id,
                _dumps(e.payload),
                e.created_at,
                e.state,
                e.reason,
            )
            for e in events
        ]
        with self._lock, self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox "
                "(event_id, kind, session_id, payload, created_at, state, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return db.total_changes - before

    def pending(self, kind: str, limit: int) -> list[Event]:
        """The oldest events of a kind still waiting to be sent."""
        return self._events(
            "WHERE kind = ? AND state = 'pending' ORDER BY seq LIMIT ?", (kind, limit)
        )

    def rejected(self, limit: int = 100) -> list[Event]:
        """The most recently refused events."""
        return self._events("WHERE state = 'rejected' ORDER BY seq DESC LIMIT ?", (limit,))

    def latest(self, kind: str) -> Event | None:
        """The newest event of a kind, whatever became of it."""
        found = self._events("WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,))
        return found[0] if found else None

    def session_events(self, kind: str, session_public_id: str) -> list[Event]:
        """Every event of one session, oldest first."""
        return self._events(
            "WHERE kind = ? AND session_id = ? ORDER BY seq", (kind, session_public_id)
        )

    def get(self, event_ids: Iterable[str]) -> list[Event]:
        """These events, in journal order."""
        ids = list(event_ids)
        marks = ", ".join("?" * len(ids))
        return self._events(f"WHERE event_id IN ({marks}) ORDER BY seq", ids)

    def _events(self, where: str, params: Sequence[object]) -> list[Event]:
        # `where` is always one of this module's literals; values go in as parameters.
        query = f"SELECT {_COLUMNS} FROM outbox {where}"  # noqa: S608
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [
            Event(
                seq, event_id, kind, session_public_id, json.loads(payload), created, state, reason
            )
            for seq, event_id, kind, session_public_id, payload, created, state, reason in rows
        ]

    def finish(self, settlements: Sequence[tuple[str, str, str | None]], done_at: str) -> None:
        """Record the server's answers (event_id, 'sent'|'rejected', reason) in one transaction.

        Only pending events change: an answer, once recorded, is final.
        """
        with self._lock, self._transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = ?, reason = ?, done_at = ? "
                "WHERE event_id = ? AND state = 'pending'",
                [(state, reason, done_at, event_id) for event_id, state, reason in settlements],
            )

    def counts(self) -> Counts:
        """Pending, sent and rejected events of every kind."""
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        found = dict(rows)
        return Counts(found.get(PENDING, 0), found.get(SENT, 0), found.get(REJECTED, 0))

    def get_meta(self, key: str) -> str | None:
        """A remembered value (last sync, the cached schedule, …)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        """Remember several values at once (all or none)."""
        with self._lock, self._transaction() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )


def _make_private(path: Path) -> None:
    """The journal holds rosters (names, card codes): it is created readable by this user alone,
    and SQLite gives its -wal and -shm files the journal's mode. An older, looser one is
    tightened."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    else:
        return
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(name.stat().st_mode) & 0o077:
                name.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: theirs to fix
            log.warning("%s can be read by other users (chmod 600 it)", name)


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
