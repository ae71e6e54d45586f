"""Personal API tokens expire and carry a label: every token gets `expires_at` (those made before
this revision expire 90 days after the migration runs) and a `label` (empty for them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The lifetime existing tokens get; domain/api_tokens.DEFAULT_TOKEN_DAYS, written out because a
# revision must not change when the code does.
EXISTING_TOKEN_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("label", sa.String(length=100), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    # Stored naive in UTC, as server/db/base.UTCDateTime does.
    expires = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(
        days=EXISTING_TOKEN_DAYS
    )
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime()))
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None)).values(expires_at=expires))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    # Going down, every token lives for ever again and loses its label.
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("label")
