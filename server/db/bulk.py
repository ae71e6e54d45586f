"""Fast bulk writes and reads. Inserts: the statement is compiled once and rows go to the
driver's executemany, with each column's own bind processing (UTC datetimes, hours) applied in
one tight loop. Reads: plain tuples straight from the driver."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, insert
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
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    ]
    plan = list(zip(order, processors, strict=True))
    sql = str(compiled)
    for start in range(0, len(rows), CHUNK):
        params = [
            tuple(process(row[name]) if process else row[name] for name, process in plan)
            for row in rows[start : start + CHUNK]
        ]
        await connection.exec_driver_sql(sql, params)


async def fetch_tuples(
    session: AsyncSession, statement: Select[*tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Rows of a Core select as plain tuples straight from the driver, inside the session's
    transaction: for reading hundreds of thousands of ints and short strings quickly (no result
    processing is applied, so select only columns that need none)."""
    connection = await session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or [])
    values = []
    for name in names:
        process = compiled.binds[name].type.bind_processor(dialect)
        value = compiled.params[name]
        values.append(process(value) if process else value)
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if dialect.name == "postgresql":
        return [tuple(record) for record in await driver.fetch(str(compiled), *values)]
    return [tuple(row) for row in await driver.execute_fetchall(str(compiled), values)]
