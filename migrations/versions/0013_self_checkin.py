"""Self check-in by phone (扫码签到, issue 16): a check-in's source may be `self`; it keeps the
digest of the phone it came from and the flags a reviewer should see; a member may hold the
salted hash of their ID number's last four digits (the second factor); a venue may restrict
self check-in to some networks (CIDR list).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SOURCES = "source IN ('scanner', 'manual', 'import', 'qr')"
NEW_SOURCES = "source IN ('scanner', 'manual', 'import', 'qr', 'self')"


def upgrade() -> None:
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("review_flags", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_checkins_phone_digest"), ["phone_digest"], unique=False
        )
        batch_op.drop_constraint(batch_op.f("ck_checkins_source"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_checkins_source"), NEW_SOURCES)
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_last4_hash", sa.String(length=160), nullable=True))
    with op.batch_alter_table("venues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("selfcheckin_networks", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM checkins WHERE source = 'self'")
    with op.batch_alter_table("venues", schema=None) as batch_op:
        batch_op.drop_column("selfcheckin_networks")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("id_last4_hash")
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_checkins_source"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_checkins_source"), OLD_SOURCES)
        batch_op.drop_index(batch_op.f("ix_checkins_phone_digest"))
        batch_op.drop_column("review_flags")
        batch_op.drop_column("phone_digest")
