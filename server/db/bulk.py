"""Fast bulk inserts: the statement is compiled once and rows go to the driver's executemany,
with each column's own bind processing (UTC datetimes, hours) applied in one tight loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.base import Base

CHUNK = 5000


async def bulk_insert(
    session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert many rows (all with the same keys) inside the session's transaction."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    connection = await session.connection()
    dialect = connection.dialect
    names = list(rows[0].keys())
    compiled = (
        insert(table).values({name: bindparam(name) for name in names}).compile(dialect=dialect)
    )
    order = list(compiled.positiontup or names)
    processors: list[Callable[[Any], Any] | None] = [
        table.c[name].type.bind_processor(dialect) for name in order
    ]
    plan = list(zip(order, processors, strict=True))
    sql = str(compiled)
    for start in range(0, len(rows), CHUNK):
        params = [
            tuple(process(row[name]) if process else row[name] for name, process in plan)
            for row in rows[start : start + CHUNK]
        ]
        await connection.exec_driver_sql(sql, params)
