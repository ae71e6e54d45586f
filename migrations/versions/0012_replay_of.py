"""Make-up sessions (补学, issue 15): a session may replay the recording of another one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_of_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_training_sessions_replay_of_id"), ["replay_of_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_training_sessions_replay_of_id_training_sessions"),
            "training_sessions",
            ["replay_of_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_training_sessions_replay_of_id_training_sessions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_training_sessions_replay_of_id"))
        batch_op.drop_column("replay_of_id")
