"""Accepted walk-ins: a walk-in from outside a session's organizations is credited only once a
reviewer whose scope holds the member accepts it; the acceptance outlives re-finalization.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accepted_walk_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("accepted_by", sa.String(length=100), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_accepted_walk_ins_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_accepted_walk_ins_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accepted_walk_ins")),
        sa.UniqueConstraint(
            "session_id", "member_id", name=op.f("uq_accepted_walk_ins_session_id_member_id")
        ),
    )
    with op.batch_alter_table("accepted_walk_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accepted_walk_ins_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("accepted_walk_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accepted_walk_ins_member_id"))
    op.drop_table("accepted_walk_ins")
