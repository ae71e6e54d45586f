"""Training plans (备案) and their classes, the ten-step class workflow, and the link from a
session to the plan class it is a run of.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_steps")),
        sa.UniqueConstraint("key", name=op.f("uq_workflow_steps_key")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("filed_at", sa.DateTime(), nullable=True),
        sa.Column("filed_by", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'filed', 'accepted', 'returned')", name=op.f("ck_plans_state")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_plans_org_id_organizations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("org_id", "year", name=op.f("uq_plans_org_id_year")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_year"), ["year"], unique=False)

    op.create_table(
        "plan_classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("runs_planned", sa.Integer(), nullable=False),
        sa.Column("trainees_planned", sa.Integer(), nullable=False),
        sa.Column("hours_per_run", sa.Integer(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("months", sa.JSON(), nullable=False),
        sa.Column("target_categories", sa.JSON(), nullable=False),
        sa.Column("target_org_codes", sa.JSON(), nullable=False),
        sa.Column("first_lesson", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("runs_planned >= 0", name=op.f("ck_plan_classes_runs_planned")),
        sa.CheckConstraint("trainees_planned >= 0", name=op.f("ck_plan_classes_trainees_planned")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_classes_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_classes")),
        sa.UniqueConstraint("plan_id", "code", name=op.f("uq_plan_classes_plan_id_code")),
    )
    with op.batch_alter_table("plan_classes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_classes_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "class_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=32), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["plan_classes.id"],
            name=op.f("fk_class_steps_class_id_plan_classes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_steps")),
        sa.UniqueConstraint("class_id", "step_key", name=op.f("uq_class_steps_class_id_step_key")),
    )
    # A batch copy on SQLite, with foreign keys off while it runs (migrations/env.py).
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_class_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_training_sessions_plan_class_id"), ["plan_class_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_training_sessions_plan_class_id_plan_classes"),
            "plan_classes",
            ["plan_class_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_training_sessions_plan_class_id_plan_classes"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_training_sessions_plan_class_id"))
        batch_op.drop_column("plan_class_id")

    op.drop_table("class_steps")
    with op.batch_alter_table("plan_classes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_classes_plan_id"))

    op.drop_table("plan_classes")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_year"))

    op.drop_table("plans")
    op.drop_table("workflow_steps")
