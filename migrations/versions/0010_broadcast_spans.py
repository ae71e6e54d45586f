"""When each session's broadcast was on air (开始直播 to 结束直播), so that a branch venue's last
`good` sample never vouches for time after the broadcast ended. Sessions broadcast before this
revision have no spans, and their up-time is computed as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcast_spans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_broadcast_spans_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_spans")),
    )
    with op.batch_alter_table("broadcast_spans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_broadcast_spans_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("broadcast_spans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_spans_session_id"))
    op.drop_table("broadcast_spans")
