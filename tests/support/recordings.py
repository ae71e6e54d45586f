"""A recording row as a broadcast leaves it, for the tests of what is done with recordings
(their page, retention, make-up sessions) without broadcasting first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from server.db.models import Recording, TrainingSession
from server.db.session import write_session
from tests.support.databases import Db


async def add_recording(
    db: Db,
    session_id: str,
    file_name: str,
    started_at: datetime,
    *,
    length: timedelta | None = timedelta(hours=1),
    size: int = 1,
    gaps: list[list[float]] | None = None,
    problem: str | None = None,
    deleted_at: datetime | None = None,
) -> str:
    """A recording of the session (by public id) that ran `length` from started_at (None: still
    recording); its public id."""
    public_id = str(uuid.uuid4())
    async with write_session(db) as session:
        training = await session.scalar(
            select(TrainingSession.id).where(TrainingSession.public_id == session_id)
        )
        assert training is not None, session_id
        session.add(
            Recording(
                public_id=public_id,
                session_id=training,
                file_name=file_name,
                started_at=started_at,
                ended_at=None if length is None else started_at + length,
                duration_ms=None if length is None else int(length.total_seconds() * 1000),
                bytes=None if length is None else size,
                gaps=gaps or [],
                problem=problem,
                deleted_at=deleted_at,
            )
        )
    return public_id
