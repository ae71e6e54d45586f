"""A venue's agent reports how its picture reaches it: the ICE candidate pair it ended up with
(`host/udp`, `srflx/udp`, `prflx/udp`, `relay/udp`, `relay/tcp` or `relay/tls`), for the wall.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("venues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_ice_path", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("venues", schema=None) as batch_op:
        batch_op.drop_column("agent_ice_path")
