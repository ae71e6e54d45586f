"""A keyed, anchored audit chain: each audit entry says how its hash was made (1: the unkeyed
SHA-256 of the entries written so far, which stay as they are; 2: HMAC-SHA256 with a key derived
from the server's secret key), and each stored monthly report keeps the trail's head (entry count
and last hash) as it was when the report was kept.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chain_version", sa.Integer(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("report_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("audit_head", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Keyed entries cannot be checked once their version is gone: going down loses that.
    with op.batch_alter_table("report_snapshots", schema=None) as batch_op:
        batch_op.drop_column("audit_head")
        batch_op.drop_column("audit_count")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("chain_version")
