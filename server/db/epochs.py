"""UTC datetime columns as whole epoch seconds, computed by the database: a read through
`bulk.fetch_tuples` then builds no datetimes at all (finalizing and the review page's stream
timelines read their thousands of samples so)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func


def epoch_of(column: Any, dialect: str) -> ColumnElement[int]:
    """The column's value as whole seconds since the epoch, in this database's SQL."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), Integer)
    return cast(func.strftime("%s", column), Integer)
