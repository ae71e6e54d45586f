"""On SQLite, datetimes written by the bulk inserts before this revision lack the microseconds
SQLAlchemy writes (`2026-03-31 16:00:00` instead of `2026-03-31 16:00:00.000000`), so text
comparisons at an exact boundary went wrong; give every such value the one format. PostgreSQL
stores real timestamps and is left alone. Nothing to undo: both forms read back the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if isinstance(column["type"], sa.DateTime):
                name = bind.dialect.identifier_preparer.quote(column["name"])
                quoted = bind.dialect.identifier_preparer.quote(table)
                op.execute(
                    f"UPDATE {quoted} SET {name} = {name} || '.000000' "  # noqa: S608
                    f"WHERE length({name}) = 19"
                )


def downgrade() -> None:
    pass
