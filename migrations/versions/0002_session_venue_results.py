"""Per-venue results of a finalized session: expected, checked in, stream up-time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_venues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("checked_in", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("up_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("session_venues", schema=None) as batch_op:
        batch_op.drop_column("up_seconds")
        batch_op.drop_column("checked_in")
        batch_op.drop_column("expected")
